"""The per-request scoring options, stated once.

The API's form fields (``service.api.deps``) and batch JSON
(``service.api.schemas.BatchRequest``), the ``unmask score`` flags, a job's
stored options, ``ScoringConfig.with_options`` and ``record.options`` are all
made from this one type: a name, its limits and its description live here
and nowhere else. An absent option keeps the server's (or the command
line's) setting, whose defaults are ``ScoringConfig``'s.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .aggregation import STRATEGIES

Aggregation = Literal[tuple(STRATEGIES.names())]  # type: ignore[valid-type]  # the registry's names, in the schema
MAX_SAMPLE_FPS = 60.0  # the server setting's own bound (service.core.config)


class ScoringOptions(BaseModel):
    """What one request may change about how its files are scored."""

    model_config = ConfigDict(extra="forbid")

    frames: Optional[int] = Field(None, ge=1, description="frames sampled evenly from each video")
    sample_fps: Optional[float] = Field(None, gt=0, le=MAX_SAMPLE_FPS, allow_inf_nan=False,
                                        description="or this many frames a second, at most `frames` (for long videos)")
    aggregation: Optional[Aggregation] = Field(None, description="a track's score from its faces: confident, mean or max")
    explain: bool = Field(False, description="add Grad-CAM heat maps for the highest-scoring faces")
    # Shortcuts (docs/speed.md): absent keeps the server's setting; the record's ``work`` says what each one did.
    early_stop: Optional[bool] = Field(None, description="score a first pass of frames spread over a video and stop "
                                       "there when every counted person's score is clear of the threshold")
    min_face_px: Optional[int] = Field(None, ge=0, le=1000, description="the smallest face searched for, in pixels of "
                                       "the file (0: as small as the detector's floor)")
    adaptive_tta: Optional[bool] = Field(None, description="run the flipped view only for faces whose plain score is "
                                         "near the threshold")
    uncertain_margin: Optional[float] = Field(None, ge=0, le=0.5, allow_inf_nan=False,
                                              description="a score within this of the threshold is uncertain (confidence "
                                                          "low); 0: none is; absent: the server's setting, by default "
                                                          "the model's own band")

    def given(self) -> dict:
        """The options set, as ``ScoringConfig.with_options`` and a job's stored options take them (a subclass's
        other fields, such as a batch's paths, left out)."""
        return self.model_dump(include=set(ScoringOptions.model_fields), exclude_none=True)


OPTION_NAMES = tuple(ScoringOptions.model_fields)
