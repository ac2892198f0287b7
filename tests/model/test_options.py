"""The per-request options are one type (model.options.ScoringOptions): every surface is made from it."""

import re
from pathlib import Path

from unmask.cli.main import build_parser
from unmask.model.config import PER_REQUEST, ScoringConfig
from unmask.model.options import ScoringOptions

REPO = Path(__file__).resolve().parents[2]
NAMES = tuple(ScoringOptions.model_fields)


def test_the_config_the_record_and_the_type_name_the_same_options():
    assert PER_REQUEST == NAMES
    assert tuple(ScoringConfig().options()) == NAMES
    assert ScoringConfig().with_options(**ScoringOptions(frames=3, explain=True).given()).frames == 3


def test_the_form_fields_and_the_batch_json_are_the_types_own():
    from unmask.service.main import create_app

    spec = create_app().openapi()["components"]["schemas"]
    for body in ("Body_score_images", "Body_score_videos", "Body_create_job", "BatchRequest"):
        props = spec[body]["properties"]
        assert set(NAMES) <= set(props), body
        for name in NAMES:
            assert props[name]["description"].startswith(ScoringOptions.model_fields[name].description), (body, name)


def test_the_score_command_has_a_flag_per_option_with_the_types_help():
    score = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "score")[1]
    by_dest = {a.dest: a for a in score._actions}
    for name in NAMES:
        assert by_dest[name].help.startswith(ScoringOptions.model_fields[name].description), name
        assert by_dest[name].default == getattr(ScoringConfig(), name), name


def test_no_request_surface_declares_an_option_of_its_own():
    """A grep, as a newcomer would run it: the API's fields and the score flags are declared in model/options.py only.

    (``service/core/config.py`` holds the server's defaults, ``extract --frames`` is another command's flag and the
    record's top-level ``aggregation`` says what was used: none of them is a request's option.)
    """
    declaration = re.compile(r"\b(%s)\s*:\s*(Optional\[|bool\b)|Form\([^)]*frames|(?<!extract)\.add_argument\(\"--(%s)\""
                             % ("|".join(NAMES), "|".join(n.replace("_", "-") for n in NAMES)))
    surfaces = [REPO / "model" / "options.py", *(REPO / "service" / "api").rglob("*.py"),
                *(REPO / "service" / "jobs").rglob("*.py"), *(REPO / "cli").rglob("*.py")]
    found = [f"{path.relative_to(REPO)}:{i}" for path in surfaces
             for i, line in enumerate(path.read_text().splitlines(), 1) if declaration.search(line)]
    assert found and all(f.startswith("model/options.py:") for f in found), found
    assert len(found) == len(NAMES)  # one declaration each
