"""The textgenrnn language-model path: real pretrained weights, greedy and deterministic."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("h5py")

from verinfer.inference import lm as lm_mod  # noqa: E402
from verinfer.inference.lm import (  # noqa: E402
    LanguageModelError,
    load_lm,
    load_lm_spec,
    lm_commitment,
    lm_profile_hash,
)
from verinfer.models.errors import InvalidInputError  # noqa: E402
from verinfer.models.hashing import FIELD, hash_vector  # noqa: E402
from verinfer.models.tensor import decode_input, encode_tensor  # noqa: E402

PROMPTS = ["", "The best way to ", "What is your favorite", "I just "]


@pytest.fixture(scope="module")
def model():
    return load_lm("textgenrnn")


def test_greedy_is_deterministic_within_and_across_processes(model):
    here = [model.generate(model.encode(p)) for p in PROMPTS]
    assert here == [model.generate(model.encode(p)) for p in PROMPTS]
    code = (
        "import json,sys; from verinfer.inference.lm import load_lm; m=load_lm('textgenrnn');"
        "print(json.dumps([m.generate(m.encode(p)) for p in json.loads(sys.argv[1])]))"
    )
    res = subprocess.run([sys.executable, "-c", code, json.dumps(PROMPTS)], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(res.stdout) == here
    hashes = {hash_vector(ids, 32) for ids in here}
    assert len(hashes) == len(PROMPTS) and all(0 <= h < FIELD for h in hashes)


def test_pretrained_weights_give_english(model):
    # A wrong cuDNN->torch conversion yields symbol soup; the right one yields English words.
    for p in PROMPTS:
        ids = model.generate(model.encode(p))
        assert 1 <= len(ids) <= model.spec.max_new_tokens
        text = model.decode(ids)
        assert len(re.findall(r"[A-Za-z ]", text)) >= 0.9 * len(text), text
        words = set(text.lower().split())
        assert words & {"the", "a", "and", "i", "of", "to", "is", "was"}, text
    # verified on this machine's profile (torch 2.13.0 CPU, float32, 1 thread)
    assert model.decode(model.generate(model.encode("The best way to "))).startswith("start a stranger and")


def test_naive_transpose_conversion_is_garbage(monkeypatch):
    """Guards the conversion itself: the plausible text above is not an accident of the test."""
    monkeypatch.setattr(lm_mod, "_cudnn_gate_to_torch", lambda block: block.T)
    wrong = lm_mod.TextgenRNN(load_lm_spec("textgenrnn"))
    text = wrong.decode(wrong.generate(wrong.encode("The best way to ")))
    assert len(re.findall(r"[A-Za-z ]", text)) < 0.7 * len(text)


def test_stop_token_and_limits(model):
    spec = model.spec
    ids = model.generate(model.encode("What is your favorite"))
    assert spec.stop_token not in ids[:-1]
    assert ids[-1] == spec.stop_token or len(ids) == spec.max_new_tokens
    assert 0 not in ids  # padding is never generated
    with pytest.raises(InvalidInputError):
        model.generate([])
    with pytest.raises(InvalidInputError):
        model.generate([spec.vocab_size])
    with pytest.raises(InvalidInputError):
        model.generate([1] * (spec.max_prompt_tokens + 1))


def test_payloads_and_identity(model):
    spec = model.spec
    prompt = model.encode("hello")
    assert decode_input(encode_tensor(prompt, "int32"), spec) == prompt
    with pytest.raises(InvalidInputError, match="dtype"):
        decode_input(encode_tensor([1, 2], "int8"), spec)
    with pytest.raises(InvalidInputError, match="vocabulary"):
        decode_input(encode_tensor([1, -1], "int32"), spec)
    with pytest.raises(InvalidInputError, match="shape"):
        decode_input(encode_tensor([1, 2, 3, 4], "int32", [2, 2]), spec)
    assert 0 <= lm_commitment(spec) < FIELD and len(lm_profile_hash(spec)) == 32
    other = spec.model_copy(update={"max_new_tokens": 10})
    assert lm_commitment(other) != lm_commitment(spec)


def test_tampered_weights_are_refused(tmp_path):
    spec = load_lm_spec("textgenrnn")
    data = lm_mod._data_dir()
    (tmp_path / spec.weights_file).write_bytes((data / spec.weights_file).read_bytes()[:-1] + b"\x00")
    with pytest.raises(LanguageModelError, match="sha256"):
        lm_mod.TextgenRNN(spec, base=tmp_path)
    with pytest.raises(LanguageModelError):
        load_lm_spec(b'{"format": "verinfer.lm.v1", "name": "x"}')


def test_weights_travel_content_addressed(tmp_path):
    from verinfer.storage import open_store

    store = open_store(None, tmp_path / "store")
    spec = lm_mod.with_content_ids(load_lm_spec("textgenrnn"), store)
    assert spec.weights_cid and spec.vocab_cid
    # a node that does not ship the files fetches them by CID (renamed so the package copy is not used)
    remote = spec.model_copy(update={"weights_file": "fetched-weights.hdf5", "vocab_file": "fetched-vocab.json"})
    with pytest.raises(LanguageModelError, match="not found"):
        lm_mod.TextgenRNN(remote, base=tmp_path / "empty")
    base = lm_mod.fetch_lm_files(remote, store, tmp_path / "lm")
    fetched = lm_mod.TextgenRNN(remote, base=base)
    shipped = load_lm("textgenrnn")
    prompt = shipped.encode("What is ")
    assert fetched.generate(prompt) == shipped.generate(prompt)
    # a CID whose content has another digest is refused
    wrong = remote.model_copy(update={"weights_file": "other.hdf5", "weights_cid": spec.vocab_cid})
    with pytest.raises(LanguageModelError, match="sha256"):
        lm_mod.fetch_lm_files(wrong, store, tmp_path / "lm2")
    with pytest.raises(LanguageModelError):
        load_lm_spec({**json.loads(spec.canonical_json()), "weights_file": "../etc/passwd"})
