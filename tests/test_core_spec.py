"""Task YAML validation: every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import ConfigError, TaskSpecError
from evalkit.tasks._registry import find_task_files, load_task, parse_task_list
from evalkit.tasks._spec import load_spec_file

GOOD = """\
name: mini
kind: multiple_choice
data:
  local: mini/{split}/{subject}.csv
eval_split: test
prompt_styles:
  default:
    doc_to_text: "{{ question }}"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_spec_loads(tmp_path: Path) -> None:
    spec = load_spec_file(_write(tmp_path, GOOD))
    assert spec.name == "mini" and spec.kind == "multiple_choice"


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "num_fewshot: many\n")
    with pytest.raises(TaskSpecError) as err:
        load_spec_file(path)
    message = str(err.value)
    assert f"{path}:9:" in message and "field 'num_fewshot'" in message


def test_nested_field_error_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('    doc_to_text: "{{ question }}"', '    doc_to_txt: "{{ question }}"')
    with pytest.raises(TaskSpecError) as err:
        load_spec_file(_write(tmp_path, text))
    assert "mini.yaml:8:" in str(err.value) and "prompt_styles.default.doc_to_txt" in str(err.value)


def test_unknown_kind_lists_known_kinds(tmp_path: Path) -> None:
    with pytest.raises(TaskSpecError, match=r"mini.yaml:2: field 'kind' is 'essay'; use one of: .*multiple_choice"):
        load_spec_file(_write(tmp_path, GOOD.replace("kind: multiple_choice", "kind: essay")))


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(TaskSpecError, match=r"mini.yaml:\d+: not valid YAML"):
        load_spec_file(_write(tmp_path, GOOD + "subjects: [a, b\n"))


def test_cross_field_rule_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TaskSpecError, match="num_fewshot > 0 needs a fewshot_split"):
        load_spec_file(_write(tmp_path, GOOD + "num_fewshot: 3\n"))


def test_builtin_tasks_validate() -> None:
    files = find_task_files()
    assert {"ceval", "cmmlu", "wikitext", "zh_ppl", "ppl"} <= set(files)
    ceval = load_task("ceval")
    cmmlu = load_task("cmmlu")
    assert len(ceval.subset_names()) == 52 and len(cmmlu.subset_names()) == 67
    hard = [s for s, info in ceval.subjects.items() if "hard" in info.groups]  # type: ignore[attr-defined]
    assert len(hard) == 8
    china = [s for s, info in cmmlu.subjects.items() if "China specific" in info.groups]  # type: ignore[attr-defined]
    assert len(china) == 15


def test_task_list_parsing_with_subsets() -> None:
    known = {"cmmlu", "ceval", "wikitext"}
    sel = parse_task_list("cmmlu:agronomy,anatomy,ceval:computer_network,wikitext", known)
    assert [(s.name, s.subsets) for s in sel] == [
        ("cmmlu", ("agronomy", "anatomy")), ("ceval", ("computer_network",)), ("wikitext", ())]


def test_unknown_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown task 'nope'; known tasks: .*cmmlu"):
        load_task("nope")
