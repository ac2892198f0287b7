"""The loaded model for people: name, version, licence and its model card (no API key needed, as /readyz).

The web page's model line reads ``GET /model`` and links to ``GET /model/card``:
a plain link sends no API key, and neither says more than the bundled cards do.
"""

from fastapi import APIRouter, Response

from ....model.card import card_licence, read_card
from ...core.problems import Problem
from ..deps import PredictorDep
from ..examples import problems
from ..schemas import ModelInfo

router = APIRouter(prefix="/model", tags=["operations"])
CARD_TYPE = "text/markdown"


@router.get("", response_model=ModelInfo, responses=problems(503))
def model_info(predictor: PredictorDep) -> ModelInfo:
    """The checkpoint that scores files: name, version, threshold, the weights' licence and where its card is (503 while it loads)."""
    ref, card = predictor.model_ref, read_card(predictor.weights_path)
    return ModelInfo(name=ref.name, version=ref.version, architecture=ref.architecture, threshold=predictor.model_config.threshold,
                     licence=card_licence(card) if card else None, card="/model/card" if card else None)


@router.get("/card", response_class=Response, responses={200: {"content": {CARD_TYPE: {"schema": {"type": "string"}}}}, **problems(404, 503)})
def model_card(predictor: PredictorDep) -> Response:
    """The model card (Markdown): intended use, figures, limitations, licence, training. 404 when the checkpoint has none."""
    card = read_card(predictor.weights_path)
    if card is None:
        raise Problem(404, "Not found", f"the model {predictor.model_ref.name} has no model card", "not_found")
    return Response(card, media_type=f"{CARD_TYPE}; charset=utf-8")
