"""Task files: shipped tasks match the data's labels; malformed files fail with one clear line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llm2edge.errors import TaskError
from llm2edge.hub.label.task import load_task, shipped_tasks

SHIPPED_DATA = {"stance": "semeval2016_stance", "misinfo": "mrf", "ideology": "ibc", "humor": "reddit_humor"}

GOOD_TOML = """
name = "toy"
version = "2"
instruction = "Is it about sports?"
fields = ["lang"]

[[labels]]
name = "sports"
description = "about sport"

[[labels]]
name = "other"
words = ["other", "something else"]

[[examples]]
text = "The match ended 2-1."
label = "sports"
lang = "en"
"""

GOOD_YAML = """
name: toy
version: "2"
instruction: Is it about sports?
fields: [lang]
labels:
  - {name: sports, description: about sport}
  - {name: other, words: [other, something else]}
examples:
  - {text: "The match ended 2-1.", label: sports, lang: en}
"""


def _labels(csv_path: Path) -> set[str]:
    with csv_path.open(encoding="utf-8", newline="") as fh:
        return {row["label"] for row in csv.DictReader(fh)}


def test_shipped_tasks_present() -> None:
    assert set(SHIPPED_DATA) <= set(shipped_tasks())


@pytest.mark.parametrize("name", sorted(SHIPPED_DATA))
def test_shipped_task_labels_match_the_data(name: str, shared_data: Path) -> None:
    task = load_task(name)
    assert set(task.label_names) == _labels(shared_data / SHIPPED_DATA[name] / "test.csv")
    assert all(ex.label in task.label_names for ex in task.examples)


def test_humor_task_matches_the_example_dataset(example_dir: Path) -> None:
    assert set(load_task("humor").label_names) == _labels(example_dir / "train.csv")


def test_stance_has_target_field() -> None:
    task = load_task("stance")
    assert task.fields == ("target",)
    assert all(ex.fields["target"] for ex in task.examples)


def test_toml_and_yaml_give_the_same_task(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text(GOOD_TOML, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(GOOD_YAML, encoding="utf-8")
    a, b = load_task(tmp_path / "t.toml"), load_task(tmp_path / "t.yaml")
    assert a.material() == b.material()
    assert a.prompt_hash == b.prompt_hash
    assert a.space.forms("other") == ("other", "something else")
    assert a.space.forms("sports") == ("sports",)


def test_version_changes_the_prompt_hash(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD_TOML, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD_TOML.replace('version = "2"', 'version = "3"'), encoding="utf-8")
    assert load_task(tmp_path / "a.toml").prompt_hash != load_task(tmp_path / "b.toml").prompt_hash


def test_unknown_label_in_examples_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(GOOD_TOML.replace('label = "sports"', 'label = "sprots"'), encoding="utf-8")
    with pytest.raises(TaskError, match=r"examples\[0\].*unknown label 'sprots'"):
        load_task(path)


@pytest.mark.parametrize("key", ["name", "instruction", "labels"])
def test_missing_key_names_file_and_key(tmp_path: Path, key: str) -> None:
    lines = GOOD_YAML.strip().splitlines()
    if key == "labels":
        kept = [ln for ln in lines if not ln.startswith(("labels:", "  - {name: sports", "  - {name: other",
                                                         "examples:", "  - {text"))]
    else:
        kept = [ln for ln in lines if not ln.startswith(f"{key}:")]
    path = tmp_path / "t.yaml"
    path.write_text("\n".join(kept), encoding="utf-8")
    with pytest.raises(TaskError) as err:
        load_task(path)
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_example_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(GOOD_TOML.replace('lang = "en"', ""), encoding="utf-8")
    with pytest.raises(TaskError, match=r"t.toml: examples\[0\]: missing key 'lang'"):
        load_task(path)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(TaskError, match="not valid TOML"):
        load_task(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text('labelz = "x"\n' + GOOD_TOML, encoding="utf-8")
    with pytest.raises(TaskError, match="unknown key.*labelz"):
        load_task(tmp_path / "typo.toml")
    (tmp_path / "typo2.toml").write_text(GOOD_TOML + 'lable = "x"\n', encoding="utf-8")
    with pytest.raises(TaskError, match=r"examples\[0\]: unknown key.*lable"):
        load_task(tmp_path / "typo2.toml")
    clash = GOOD_TOML.replace('words = ["other", "something else"]', 'words = ["sports"]')
    (tmp_path / "clash.toml").write_text(clash, encoding="utf-8")
    with pytest.raises(TaskError, match="more than one label"):
        load_task(tmp_path / "clash.toml")
    with pytest.raises(TaskError, match="no such task file"):
        load_task(tmp_path / "missing.toml")
    with pytest.raises(TaskError, match="unknown task 'nope'.*humor"):
        load_task("nope")


def test_multi_label_task_declares_sets(tmp_path) -> None:
    task = load_task("emotions")
    assert task.multi_label and not task.allow_none
    assert task.examples[1].label == "anger;surprise"
    assert task.label_set("surprise;anger", "x") == ("anger", "surprise")
    single = load_task("sentiment")
    assert "multi_label" not in single.material()  # single-label prompt hashes unchanged
    assert task.material()["multi_label"] is True


@pytest.mark.parametrize(("body", "needle"), [
    ('multi_label = "yes"', "'multi_label' must be true or false"),
    ("allow_none = true", "'allow_none' needs 'multi_label = true'"),
])
def test_multi_label_keys_are_checked(tmp_path, body, needle) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f'name = "t"\ninstruction = "i"\nlabels = ["a", "b"]\n{body}\n', encoding="utf-8")
    with pytest.raises(TaskError, match=needle):
        load_task(path)


def test_multi_label_example_with_an_unknown_label_names_it(tmp_path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\ninstruction = "i"\nlabels = ["a", "b"]\nmulti_label = true\n'
                    '[[examples]]\ntext = "x"\nlabel = ["a", "c"]\n', encoding="utf-8")
    with pytest.raises(TaskError, match=r"examples\[0\]: unknown label 'c'"):
        load_task(path)
