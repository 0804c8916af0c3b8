"""The search attributes operators filter on in the Temporal Web UI and `entrega orders list`."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("EntregaStage")
ORDER_ID = SearchAttributeKey.for_keyword("EntregaOrderId")

ALL = (STAGE, ORDER_ID)
