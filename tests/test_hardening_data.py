"""Hardening of the data side (issue #17, #18): encodings, CSV limits and headers, empty files, missing-data
messages, --data-dir checks, provenance through the run context, template errors at load, perplexity on
Chinese text, --task-args messages and the size of missing-subject info. Real files in tmp_path throughout."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.backends._registry import parse_kv
from evalkit.errors import ConfigError, DataError, TaskSpecError
from evalkit.metrics import corpus_perplexity
from evalkit.tasks._data import check_data_dir, read_file_rows, read_text_file
from evalkit.tasks._kind import RunContext
from evalkit.tasks._longbench_data import load_records
from evalkit.tasks._registry import load_task
from evalkit.tasks._spec import load_spec_file, validate_spec
from evalkit.tasks.multiple_choice import run as run_mc
from evalkit.tasks.perplexity import run as run_ppl
from evalkit.types import TokenLogprobs

HEADER = "id,Question,A,B,C,D,Answer\n"
ROWS = "1,水的化学式是什么？,H2O,CO2,O2,NaCl,A\n2,地球绕什么转？,月亮,太阳,火星,木星,B\n"


class _Sink:
    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def write(self, samples: Any) -> None:
        self.samples.extend(samples)


def _spec(num_fewshot: int = 0) -> Any:
    return validate_spec({
        "name": "mini", "kind": "multiple_choice", "data": {"local": "mc/{split}/{subject}.csv"},
        "eval_split": "test", "fewshot_split": "dev", "num_fewshot": num_fewshot,
        "columns": {"question": "Question", "choices": ["A", "B", "C", "D"], "answer": "Answer"},
        "prompt_styles": {"default": {"doc_to_text": "{{ question }}\n答案：", "target_delimiter": ""}},
        "subjects": {"physics": {}, "chemistry": {}}})


def _write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run(root: Path, **ctx_args: Any) -> tuple[Any, RunContext, list[str], _Sink]:
    warnings: list[str] = []
    ctx = RunContext(data_dir=root, warn=warnings.append, **ctx_args)
    sink = _Sink()
    outcome = run_mc(_spec(), FakeBackend(fixed_logprobs={"A": -0.1, "B": -2.0, "C": -3.0, "D": -4.0}), ctx, sink)
    return outcome, ctx, warnings, sink


# 1. encodings -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_in_each_supported_encoding_is_read(tmp_path: Path, encoding: str) -> None:
    for subject in ("physics", "chemistry"):
        _write(tmp_path, f"mc/test/{subject}.csv", (HEADER + ROWS).encode(encoding))
    outcome, _, warnings, sink = _run(tmp_path)
    assert outcome.n == 4 and sink.samples[0]["prompt"] == "水的化学式是什么？\n答案："
    noted = [w for w in warnings if "GB18030" in w]
    if encoding in ("gb18030", "gbk"):
        expected = (f"{tmp_path / 'mc/test/physics.csv'} and 1 more file: not UTF-8; read as GB18030 (GBK) "
                    f"Chinese text. Convert them once to silence this: iconv -f GB18030 -t UTF-8")
        assert noted == [expected]
    else:
        assert noted == []


def test_one_gb18030_file_gets_one_warning_naming_it(tmp_path: Path) -> None:
    _write(tmp_path, "mc/test/physics.csv", (HEADER + ROWS).encode("gb18030"))
    _write(tmp_path, "mc/test/chemistry.csv", (HEADER + ROWS).encode())
    _, _, warnings, _ = _run(tmp_path)
    noted = [w for w in warnings if "GB18030" in w]
    assert len(noted) == 1 and noted[0].startswith(f"{tmp_path / 'mc/test/physics.csv'}: not UTF-8; read as GB18030")


def test_undecodable_file_is_one_data_error_naming_file_line_and_byte(tmp_path: Path) -> None:
    # Latin-1 bytes: neither UTF-8 nor GB18030
    path = _write(tmp_path, "mc/test/physics.csv", (HEADER + "1,Ça été?,a,b,c,d,A\n").encode("latin-1"))
    with pytest.raises(DataError) as err:
        _run(tmp_path)
    message = str(err.value)
    assert f"{path}:2: byte " in message and "neither UTF-8 nor GB18030" in message and "iconv" in message
    assert "\n" not in message


def test_gb18030_jsonl_and_text_are_read_by_the_same_mechanism(tmp_path: Path) -> None:
    rows = _write(tmp_path, "rows.jsonl", '{"q": "问题一"}\n\n{"q": "问题二"}\n'.encode("gb18030"))
    warnings: list[str] = []
    got, lines = read_file_rows(rows, warn=warnings.append)
    assert got == [{"q": "问题一"}, {"q": "问题二"}] and lines == [1, 3]
    text = _write(tmp_path, "corpus.txt", "天下大势，分久必合。".encode("gb18030"))
    assert read_text_file(text, warn=warnings.append) == "天下大势，分久必合。"
    assert len(warnings) == 2 and all("GB18030" in w for w in warnings)


def test_longbench_loader_reads_gb18030_and_records_the_file(tmp_path: Path) -> None:
    record = {"input": "问题", "context": "上下文", "answers": ["答案"], "length": 3, "_id": "x"}
    path = _write(tmp_path, "longbench/data/multifieldqa_zh.jsonl",
                  (json.dumps(record, ensure_ascii=False) + "\n").encode("gb18030"))
    warnings: list[str] = []
    ctx = RunContext()
    found = load_records(["multifieldqa_zh"], data_dir=tmp_path, file_suffix="", hub_repo="THUDM/LongBench",
                         use_hub=False, use_demo=False, warn=warnings.append, record_file=ctx.record_file)
    assert found["multifieldqa_zh"].rows[0]["context"] == "上下文"
    assert ctx.files_read == {str(path.resolve())}
    assert len([w for w in warnings if "GB18030" in w]) == 1


# 2. long cells ------------------------------------------------------------------------------------------------

def test_csv_cell_over_128_kb_is_read(tmp_path: Path) -> None:
    long_question = "长" * 200_000  # 600 KB of UTF-8 in one cell
    for subject in ("physics", "chemistry"):
        _write(tmp_path, f"mc/test/{subject}.csv", (HEADER + f"1,{long_question},a,b,c,d,A\n").encode())
    outcome, _, _, sink = _run(tmp_path)
    assert outcome.n == 2 and len(sink.samples[0]["prompt"]) == 200_000 + len("\n答案：")


# 3. duplicate headers -----------------------------------------------------------------------------------------

def test_duplicate_csv_header_is_a_data_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "mc/test/physics.csv", b"id,Question,A,B,A,D,Answer\n1,q,a,b,c,d,A\n")
    with pytest.raises(DataError, match=r"physics\.csv:1: column 'A' appears twice in the header \(columns 3 and 5\)"
                       r"; rename or delete one"):
        read_file_rows(path)


# 4. empty, header-only, all skipped ---------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "what"), [(b"", "is empty"), (HEADER.encode(), "has no data rows"),
                                              (b"\xef\xbb\xbf" + HEADER.encode(), "has no data rows")])
def test_empty_or_header_only_file_is_a_data_error_naming_it(tmp_path: Path, content: bytes, what: str) -> None:
    _write(tmp_path, "mc/test/physics.csv", content)
    with pytest.raises(DataError, match=f"{tmp_path / 'mc/test/physics.csv'}: {what}"):
        _run(tmp_path)


def test_task_whose_rows_were_all_skipped_is_a_data_error(tmp_path: Path) -> None:
    for subject in ("physics", "chemistry"):
        _write(tmp_path, f"mc/test/{subject}.csv", (HEADER + "1,q,a,b,c,d,E\n2,,a,b,c,d,A\n").encode())
    with pytest.raises(DataError, match=r"mini: every row of .*physics\.csv \(and 1 more file\) was skipped"):
        _run(tmp_path)


def test_subject_whose_rows_were_all_skipped_is_left_out_with_a_warning(tmp_path: Path) -> None:
    _write(tmp_path, "mc/test/physics.csv", (HEADER + ROWS).encode())
    _write(tmp_path, "mc/test/chemistry.csv", (HEADER + "1,q,a,b,c,d,Z\n").encode())
    outcome, _, warnings, _ = _run(tmp_path)
    assert outcome.n == 2 and list(outcome.subtasks) == ["physics"] and outcome.info["skipped_rows"] == 0
    assert any("chemistry.csv: all 1 rows were skipped" in w for w in warnings)
    assert any("chemistry.csv:2: answer 'Z'" in w for w in warnings)


def test_empty_text_file_for_perplexity_is_a_data_error(tmp_path: Path) -> None:
    corpus = _write(tmp_path, "empty.txt", b"\n  \n")
    spec = load_task("ppl")
    with pytest.raises(DataError, match=f"{corpus}: no text to score"):
        run_ppl(spec, FakeBackend(), RunContext(task_args={"path": str(corpus)}), _Sink())  # type: ignore[arg-type]


# 5. missing data and --data-dir ------------------------------------------------------------------------------

def test_missing_data_names_the_exact_paths_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "unrelated").mkdir()
    with pytest.raises(DataError) as err:
        _run(tmp_path)
    message = str(err.value)
    assert f"looked for {tmp_path / 'mc/test/physics.csv'} (and 1 more)" in message
    assert "--data-dir" in message and "evalkit data list" in message  # "mini" cannot be pulled


def test_fineval_missing_subject_mapping_names_the_path(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "tasks" / "fineval.yaml"
    spec = load_spec_file(example)
    with pytest.raises(DataError, match=f"looked for {tmp_path / 'fineval/subject_mapping.json'}"):
        run_mc(spec, FakeBackend(), RunContext(data_dir=tmp_path), _Sink())  # type: ignore[arg-type]


def test_demo_fallback_warning_names_the_path_looked_for(tmp_path: Path) -> None:
    warnings: list[str] = []
    outcome = run_ppl(load_task("zh_ppl"), FakeBackend(), RunContext(data_dir=tmp_path, limit=1,  # type: ignore[arg-type]
                                                                    warn=warnings.append), _Sink())
    assert outcome.info["data_origin"] == "demo"
    assert any(f"looked for {tmp_path / 'zh_classical_corpus/*.txt'}" in w for w in warnings)


def test_partly_missing_subjects_warning_names_the_paths(tmp_path: Path) -> None:
    _write(tmp_path, "mc/test/physics.csv", (HEADER + ROWS).encode())
    _, _, warnings, _ = _run(tmp_path)
    assert any(f"looked for {tmp_path / 'mc/test/chemistry.csv'}" in w for w in warnings)


def test_data_dir_that_is_missing_or_a_file_is_a_config_error(tmp_path: Path) -> None:
    assert check_data_dir(tmp_path) == tmp_path
    with pytest.raises(ConfigError, match=f"--data-dir {tmp_path / 'nope'}: no such folder"):
        check_data_dir(tmp_path / "nope")
    a_file = _write(tmp_path, "file.txt", b"x")
    with pytest.raises(ConfigError, match=f"--data-dir {a_file}: is a file, not a folder"):
        check_data_dir(a_file)
    with pytest.raises(ConfigError, match="no such folder"):  # enforced by the loaders themselves
        _run(tmp_path / "nope")
    with pytest.raises(ConfigError, match="is a file"):
        run_ppl(load_task("zh_ppl"), FakeBackend(), RunContext(data_dir=a_file), _Sink())  # type: ignore[arg-type]


# 6. provenance ------------------------------------------------------------------------------------------------

def test_every_file_read_is_recorded_in_the_run_context(tmp_path: Path) -> None:
    for split in ("test", "dev"):
        for subject in ("physics", "chemistry"):
            _write(tmp_path, f"mc/{split}/{subject}.csv", (HEADER + ROWS).encode())
    ctx = RunContext(data_dir=tmp_path, num_fewshot=1)
    run_mc(_spec(num_fewshot=1), FakeBackend(), ctx, _Sink())
    assert ctx.files_read == {str((tmp_path / f"mc/{split}/{s}.csv").resolve())
                              for split in ("test", "dev") for s in ("physics", "chemistry")}
    corpus = _write(tmp_path, "c.txt", "一段文字".encode())
    ppl_ctx = RunContext(task_args={"path": str(corpus)})
    run_ppl(load_task("ppl"), FakeBackend(), ppl_ctx, _Sink())  # type: ignore[arg-type]
    assert ppl_ctx.files_read == {str(corpus.resolve())}


def test_data_module_no_longer_writes_a_global_file_list(tmp_path: Path) -> None:
    from evalkit.tasks import _data

    path = _write(tmp_path, "x.csv", (HEADER + ROWS).encode())
    recorded: list[Path] = []
    read_file_rows(path, record_file=recorded.append)
    assert recorded == [path] and not hasattr(_data, "FILES_READ")


# 7. templates checked when the spec loads ---------------------------------------------------------------------

def _yaml_with(tmp_path: Path, doc_to_text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text("name: t\nkind: multiple_choice\ndata:\n  local: x/{subject}.csv\n"
                    "prompt_styles:\n  default:\n    description: ''\n"
                    f"    doc_to_text: {doc_to_text}\n", encoding="utf-8")
    return path


def test_template_syntax_error_names_yaml_file_line_and_field(tmp_path: Path) -> None:
    path = _yaml_with(tmp_path, '"{{ question "')
    with pytest.raises(TaskSpecError, match=rf"{path}:8: field 'prompt_styles.default.doc_to_text': .*jinja2 "
                                            r"syntax error on template line 1"):
        load_spec_file(path)


def test_template_undefined_variable_is_caught_at_load(tmp_path: Path) -> None:
    path = _yaml_with(tmp_path, '"{{ questoin }}\\nA. {{ A }}"')
    with pytest.raises(TaskSpecError, match=rf"{path}:8: field 'prompt_styles.default.doc_to_text': .*unknown "
                                            r"template variable\(s\) questoin; available: answer, choices, question"):
        load_spec_file(path)
    ok = _yaml_with(tmp_path, '"{% for c in choices %}{{ c }}{% endfor %}{{ question }} {{ D }} {{ subject_zh }}"')
    assert load_spec_file(ok).name == "t"


# 8. perplexity on Chinese text --------------------------------------------------------------------------------

def test_chinese_file_through_ppl_reports_character_perplexity(tmp_path: Path) -> None:
    corpus = _write(tmp_path, "zh.txt", ("天下大势，分久必合，合久必分。" * 40 + "\n").encode())
    sink = _Sink()
    outcome = run_ppl(load_task("ppl"), FakeBackend(), RunContext(task_args={"path": str(corpus)}), sink)  # type: ignore[arg-type]
    total = sum(s["logprob"] for s in sink.samples)
    assert outcome.info["unit"] == "chars" and outcome.info["cjk_share"] == 1.0
    assert outcome.metrics["char_perplexity"] == pytest.approx(math.exp(-total / 600))
    assert "word_perplexity" not in outcome.metrics and "metric_notes" not in outcome.info
    english = _write(tmp_path, "en.txt", b"the cat sat on the mat\n")
    outcome = run_ppl(load_task("ppl"), FakeBackend(), RunContext(task_args={"path": str(english)}), _Sink())  # type: ignore[arg-type]
    assert outcome.info["unit"] == "words" and "word_perplexity" in outcome.metrics


class _HugeLoss(FakeBackend):
    """Every token costs 1000 nats, so per-word perplexity of a long unspaced text overflows a float."""

    def loglikelihood_rolling(self, texts: Any, *, stride: int | None = None) -> list[TokenLogprobs]:
        return [TokenLogprobs(tuple(-1000.0 for _ in text)) for text in texts]


def test_overflowing_metric_is_null_with_a_note_and_samples_are_kept(tmp_path: Path) -> None:
    corpus = _write(tmp_path, "w.txt", b"abcdefghij klmnopqrst\n")
    sink = _Sink()
    outcome = run_ppl(load_task("wikitext"), _HugeLoss(), RunContext(task_args={"path": str(corpus)}), sink)  # type: ignore[arg-type]
    assert outcome.metrics["word_perplexity"] is None and outcome.metrics["token_perplexity"] is None
    assert outcome.metrics["bits_per_byte"] == pytest.approx(1000 * 21 / 21 / math.log(2))
    assert outcome.info["metric_notes"]["word_perplexity"].startswith("word_perplexity is null: overflows")
    assert set(outcome.info["metric_notes"]) == {"word_perplexity", "token_perplexity", "byte_perplexity"}
    from evalkit._runtasks import outcome_record  # the run record carries the null and its note

    record = outcome_record(load_task("wikitext"), outcome, demo_data=False)
    assert record.metric("word_perplexity").value is None
    assert "overflows" in (record.metric("word_perplexity").note or "")
    assert len(sink.samples) == 1 and sink.samples[0]["logprob"] == -21000.0
    assert corpus_perplexity(-5.0, 0) is None and corpus_perplexity(-2000.0, 1) is None


# 9. --task-args messages ---------------------------------------------------------------------------------------

def test_task_args_parse_error_shows_a_task_args_example() -> None:
    with pytest.raises(ConfigError) as err:
        parse_kv("path", what="--task-args")
    assert "example: --task-args path=" in str(err.value) and "--model-args" not in str(err.value)
    with pytest.raises(ConfigError, match="example: --model-args dtype=bfloat16"):
        parse_kv("dtype")


# 10. missing subjects: a count, names only for subjects asked for ---------------------------------------------

def test_missing_subjects_are_a_count_with_names_only_when_asked_for() -> None:
    spec = load_task("ceval")
    outcome = run_mc(spec, FakeBackend(), RunContext(limit=1), _Sink())  # type: ignore[arg-type]
    total = len(spec.subset_names())
    assert outcome.info["data_origin"] == "demo"
    assert outcome.info["missing_subjects_count"] == total - outcome.info["subjects"] > 40
    assert "missing_subjects" not in outcome.info
    asked = ("computer_network", "physician")  # the demo set has the first, not the second
    outcome = run_mc(spec, FakeBackend(), RunContext(limit=1, subsets=asked), _Sink())  # type: ignore[arg-type]
    assert outcome.info["missing_subjects"] == ["physician"] and outcome.info["missing_subjects_count"] == 1


# real CLI -------------------------------------------------------------------------------------------------------

def test_cli_reports_bad_template_data_dir_and_task_args_in_one_line_before_any_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.backends import _registry
    from evalkit.cli import main

    def no_model(kind: str) -> Any:
        raise AssertionError(f"a {kind} model was loaded before the input was checked")

    monkeypatch.setattr(_registry, "_factory", no_model)

    example = Path(__file__).resolve().parents[1] / "examples" / "tasks" / "fineval.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(example.read_text(encoding="utf-8").replace('"{{ question }}', '"{{ question '), encoding="utf-8")
    cases = [(["--tasks", str(bad)], f"{bad}:18: field 'prompt_styles.default.doc_to_text'"),
             (["--tasks", "ceval", "--data-dir", str(tmp_path / "nope")], f"--data-dir {tmp_path / 'nope'}: no such"),
             (["--tasks", "ppl", "--task-args", "path"], "example: --task-args path=")]
    for args, expected in cases:
        assert main(["run", "--model", "smollm2", "--output", str(tmp_path / "runs"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err

@pytest.mark.integration
def test_cli_ppl_on_a_chinese_gb18030_file_with_tiny_llama(tmp_path: Path) -> None:
    corpus = _write(tmp_path, "zh.txt", ("天下大势，分久必合，合久必分。周末七国分争，并入于秦。\n" * 20).encode("gb18030"))
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "evalkit", "run", "--model", "tiny-llama", "--tasks", "ppl",
                           "--task-args", f"path={corpus}", "--output", str(out), "--no-cache"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GB18030" in proc.stderr + proc.stdout
    results = json.loads(next(out.glob("*/results.json")).read_text())
    task = results["tasks"]["ppl"]
    assert task["info"]["unit"] == "chars" and task["metrics"]["char_perplexity"] > 1
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert hashlib.sha256(corpus.read_bytes()).hexdigest() in json.dumps(manifest)


def test_longbench_task_records_its_data_and_config_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.tasks.longcontext import run as run_longcontext

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record = {"input": "问题", "context": "上下文很长", "answers": ["答案"], "length": 5, "_id": "a",
              "all_classes": None, "dataset": "multifieldqa_zh", "language": "zh"}
    data = _write(tmp_path, "longbench/data/multifieldqa_zh.jsonl",
                  (json.dumps(record, ensure_ascii=False) + "\n").encode())
    config = _write(tmp_path, "longbench/config/dataset2maxlen.json", b'{"multifieldqa_zh": 64}')
    ctx = RunContext(data_dir=tmp_path, subsets=("multifieldqa_zh",), task_args={"source": "local"})
    run_longcontext(load_task("longbench"), FakeBackend(max_length=4096), ctx, _Sink())  # type: ignore[arg-type]
    assert ctx.files_read == {str(data.resolve()), str(config.resolve())}
    v2_ctx = RunContext(task_args={"source": "demo"})
    run_longcontext(load_task("longbench_v2"), FakeBackend(max_length=8192), v2_ctx, _Sink())  # type: ignore[arg-type]
    assert [Path(p).name for p in v2_ctx.files_read] == ["v2.jsonl"]


def test_longbench_v2_missing_data_names_the_path(tmp_path: Path) -> None:
    from evalkit.tasks.longcontext import run as run_longcontext

    ctx = RunContext(data_dir=tmp_path, task_args={"source": "local"})
    with pytest.raises(DataError, match=f"looked for {tmp_path / 'longbench/v2/data.json'} \\(or data.jsonl\\); "
                                        f"pass --data-dir"):
        run_longcontext(load_task("longbench_v2"), FakeBackend(), ctx, _Sink())  # type: ignore[arg-type]
