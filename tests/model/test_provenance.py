"""Content Credentials (C2PA) read beside detection: files signed here under a test certificate chain."""

import io
import os

import numpy as np
import pytest
from PIL import Image
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.model.provenance import TRUST_ANCHORS_ENV, from_store, read_provenance
from unmask.model.results import MediaResult

from tests.helpers import IPTC

SIGNER = "unmask tests (unmask test signer)"  # the test certificate's organisation (common name)


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


def test_a_signed_jpeg_reports_signer_generator_state_and_the_ai_it_declares(c2pa_files):
    found = read_provenance(c2pa_files["signed"])
    assert found.present and found.validation_state == "valid"
    assert found.claim_generator == "unmask-tests 1.0" and found.signer == SIGNER
    assert found.ai_content == "generated"
    assert found.signed_at is None  # signed without a time-stamp authority
    assert "not on a trust list" in found.detail


def test_a_signer_under_a_trusted_root_is_trusted(c2pa_files, c2pa_signer, tmp_path, monkeypatch):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(c2pa_signer.ca_pem)
    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(anchors))
    assert read_provenance(c2pa_files["signed"]).validation_state == "trusted"
    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(tmp_path / "missing.pem"))  # a wrong setting: nothing trusted, no error
    assert read_provenance(c2pa_files["signed"]).validation_state == "valid"


def test_a_png_declaring_an_ai_edit_reads_as_edited(c2pa_signer, shared_data):
    buf = io.BytesIO()
    Image.open(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").reduce(8).save(buf, "PNG")
    actions = [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"},
               {"action": "c2pa.edited", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}]
    found = read_provenance(c2pa_signer.sign(buf.getvalue(), "image/png", actions))
    assert (found.present, found.validation_state, found.ai_content) == (True, "valid", "edited")


def test_a_signed_mp4_that_declares_no_ai(c2pa_signer, shared_data):
    actions = [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}]
    found = read_provenance(c2pa_signer.sign((shared_data / "clips" / "ffpp_real_004.mp4").read_bytes(), "video/mp4", actions))
    assert (found.present, found.validation_state, found.ai_content, found.signer) == (True, "valid", None, SIGNER)


def test_an_unsigned_file_has_no_credentials(shared_data):
    for source in (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", (shared_data / "clips" / "ffpp_real_004.mp4").read_bytes()):
        found = read_provenance(source)
        assert not found.present and found.validation_state is None and found.detail == "no Content Credentials in the file"


def test_pixels_changed_after_signing_make_it_invalid(c2pa_files):
    found = read_provenance(c2pa_files["tampered"])
    assert found.present and found.validation_state == "invalid"
    assert "assertion.dataHash.mismatch" in found.detail
    assert found.ai_content == "generated"  # still what it declares; the state says not to believe it


def test_a_broken_manifest_is_malformed_and_says_why(c2pa_files):
    found = read_provenance(c2pa_files["malformed"])
    assert found.present and found.validation_state == "malformed"
    assert found.detail.startswith("the manifest could not be read: ") and "CBOR" in found.detail
    assert found.claim_generator is None and found.ai_content is None


def test_a_manifest_kept_elsewhere_is_not_fetched(c2pa_signer, shared_data):
    url = "http://127.0.0.1:9/manifests/frame.c2pa"  # nothing listens there: a fetch would fail, not hang
    found = read_provenance(c2pa_signer.sign((shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes(),
                                             "image/jpeg", remote_url=url))
    assert not found.present and "not fetched" in found.detail and url in found.detail


@pytest.mark.parametrize("source", [b"", b"not media at all" * 10, b"BM" + b"\0" * 100, "/nonexistent/file.jpg"])
def test_anything_else_never_raises(source):
    found = read_provenance(source)
    assert not found.present and found.detail


def test_a_pipe_in_place_of_the_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)  # no writer: a plain open() would block for ever
    found = read_provenance(fifo)
    assert not found.present and "not a regular file" in found.detail


def test_an_ai_parent_makes_a_later_crop_ai_generated_and_odd_fields_are_ignored():
    created = {"label": "c2pa.actions.v2", "data": {"actions": [{"action": "c2pa.created",
                                                                 "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]}}
    cropped = {"label": "c2pa.actions.v2", "data": {"actions": [{"action": "c2pa.opened"}, {"action": "c2pa.cropped"}]}}
    store = {"active_manifest": "b", "validation_state": "Valid", "manifests": {
        "a": {"assertions": [created], "claim_generator": "Generator/2"},
        "b": {"assertions": [cropped, "odd", {"label": 3}], "claim_generator_info": [{"name": "Editor"}],
              "signature_info": {"issuer": "Maker", "common_name": "Maker"},
              "ingredients": [{"relationship": "parentOf", "active_manifest": "a"}, None]}}}
    found = from_store(store)
    assert (found.ai_content, found.claim_generator, found.signer) == ("generated", "Editor", "Maker")
    for odd in ({"manifests": {}, "active_manifest": None}, {"manifests": [], "active_manifest": ["x"]}):
        assert from_store(odd).validation_state == "malformed"


def test_the_record_carries_provenance_and_the_score_ignores_it(predictor, c2pa_files, shared_data):
    signed = predictor.predict(c2pa_files["signed"])
    plain = predictor.predict(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")
    assert signed.score == plain.score  # the manifest is metadata: same pixels, same score
    assert signed.provenance == read_provenance(c2pa_files["signed"])
    assert plain.provenance.present is False and plain.timings_ms["provenance"] >= 0
    assert MediaResult.from_dict(signed.to_dict()) == signed  # as a job stores and returns it


def test_decoded_pixels_have_no_file_to_read(predictor, no_face_image):
    result = predictor.predict(np.asarray(Image.open(no_face_image).convert("RGB")))
    assert result.provenance is None and "provenance" not in result.timings_ms


def test_a_file_that_cannot_be_scored_still_reports_its_credentials(predictor, c2pa_files):
    signed = c2pa_files["signed"].read_bytes()
    cut = signed[: len(signed) // 2]  # the image data cut short; the manifest, near the start, whole
    result = predictor.predict(cut, "cut.jpg", on_error="record")  # bytes, as an upload may come
    assert result.status == "error" and result.error.type == "corrupt_media"
    assert result.provenance.present and result.provenance.validation_state in ("invalid", "malformed")
