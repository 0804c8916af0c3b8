"""The search attributes operators filter on in the Temporal Web UI and `entrega orders list`."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("EntregaStage")
ORDER_ID = SearchAttributeKey.for_keyword("EntregaOrderId")
# When the current stage began: `EntregaStage STARTS_WITH "failed" AND EntregaStageSince < "…"`.
STAGE_SINCE = SearchAttributeKey.for_datetime("EntregaStageSince")

ALL = (STAGE, ORDER_ID, STAGE_SINCE)
