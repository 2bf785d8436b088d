"""Where each built-in task's data comes from, and under which licence: the facts behind `evalkit data list`.

The local layout is the one `--data-dir` expects (README "Data"); the hub ids are the official datasets the
task loaders ask `datasets.load_dataset` for; the demo set is evalkit's own small sample (not the benchmark).
Licences are those the dataset authors state (checked against their repositories; see each `homepage`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "DatasetInfo", "dataset_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """One task's data: local layout, hub id, demo set, licence."""

    task: str
    layout: str           # kind of files: "mc_csv", "mt_bench", "longbench", "longbench_v2", "text", "text_glob",
                          # "cmb_exam", "cmb_clin", "classification"
    local: str            # the local layout, relative to the data dir
    hub: str              # official hub id ("" when there is none)
    demo: str             # evalkit's demo set, relative to the bundled tasks/ folder ("" when there is none)
    licence: str
    homepage: str
    note: str = ""


DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo("ceval", "mc_csv", "ceval/{dev,val}/<subject>_{dev,val}.csv (+ subject_mapping.json)",
                "ceval/ceval-exam", "demo/ceval", "CC BY-NC-SA 4.0 (non-commercial)",
                "https://github.com/hkust-nlp/ceval", "test split has no public answers: dev + val only"),
    DatasetInfo("cmmlu", "mc_csv", "cmmlu/{dev,test}/<subject>.csv", "haonan-li/cmmlu", "demo/cmmlu",
                "CC BY-NC-SA 4.0 (non-commercial)", "https://github.com/haonan-li/CMMLU"),
    DatasetInfo("mt_bench", "mt_bench", "mt_bench/question.jsonl (+ reference_answer/gpt-4.jsonl, model_answer/)",
                "HuggingFaceH4/mt_bench_prompts", "demo/mt_bench", "Apache-2.0 (FastChat)",
                "https://github.com/lm-sys/FastChat"),
    DatasetInfo("longbench", "longbench", "longbench/data/<dataset>.jsonl (+ config/*.json)", "THUDM/LongBench",
                "demo/longbench", "MIT (LongBench repository)", "https://github.com/THUDM/LongBench"),
    DatasetInfo("longbench_e", "longbench", "longbench/data/<dataset>_e.jsonl", "THUDM/LongBench", "demo/longbench",
                "MIT (LongBench repository)", "https://github.com/THUDM/LongBench"),
    DatasetInfo("longbench_v2", "longbench_v2", "longbench/v2/data.json (+ v2_prompts/*.txt)", "THUDM/LongBench-v2",
                "demo/longbench/v2.jsonl", "see the dataset card", "https://github.com/THUDM/LongBench"),
    DatasetInfo("wikitext", "text", "wikitext2/wiki.test.raw", "EleutherAI/wikitext_document_level",
                "demo/text/wikitext_demo.txt", "CC BY-SA 3.0 and GFDL (WikiText)",
                "https://huggingface.co/datasets/Salesforce/wikitext"),
    # the domain and CLUE tasks: layouts as their loaders read them (tasks/<task>.yaml data.local), licences as
    # the authors' repositories state them; the CLUE hub card is the only source evalkit has for CLUE
    DatasetInfo("fineval", "mc_csv", "fineval/{dev,val}/<subject>_{dev,val}.csv", "SUFE-AIFLM-Lab/FinEval",
                "demo/fineval", "Apache-2.0 (FinEval repository; no separate data licence stated)",
                "https://github.com/SUFE-AIFLM-Lab/FinEval", "v1 academic knowledge, 34 subjects; dev files have a BOM"),
    DatasetInfo("cmb", "cmb_exam", "cmb/CMB-Exam/CMB-test/CMB-test-choice-question-merge.json "
                "(+ cmb/CMB-test-choice-answer.json), cmb/CMB-Exam/CMB-val/CMB-val-merge.json",
                "FreedomIntelligence/CMB", "demo/cmb/CMB-{test,val}.json", "Apache-2.0 (CMB repository)",
                "https://github.com/FreedomIntelligence/CMB", "hub config exam; the official CMB.zip unpacked under cmb/"),
    DatasetInfo("cmb_clin", "cmb_clin", "cmb/CMB-Clin-qa.json", "FreedomIntelligence/CMB",
                "demo/cmb/CMB-Clin-demo.json", "Apache-2.0 (CMB repository)",
                "https://github.com/FreedomIntelligence/CMB", "hub config clin"),
    DatasetInfo("clue_tnews", "classification", "clue/tnews_public/dev.json (JSON Lines)", "clue",
                "demo/clue/tnews_dev.csv", "see the dataset card", "https://huggingface.co/datasets/clue",
                "hub config tnews, split validation"),
    DatasetInfo("clue_afqmc", "classification", "clue/afqmc_public/dev.json (JSON Lines)", "clue",
                "demo/clue/afqmc_dev.csv", "see the dataset card", "https://huggingface.co/datasets/clue",
                "hub config afqmc, split validation"),
    DatasetInfo("zh_ppl", "text_glob", "zh_classical_corpus/*.txt", "", "demo/text/zh_demo.txt",
                "public domain (pre-modern Chinese works)", "", "any UTF-8 Chinese text files"),
    DatasetInfo("ppl", "text", "(a file given with --task-args path=FILE)", "", "demo/text/wikitext_demo.txt",
                "yours", ""),
)


def dataset_info(task: str) -> DatasetInfo | None:
    """The catalog entry of a built-in task, or None."""
    return next((d for d in DATASETS if d.task == task), None)
