"""The project's Backburner app (settings.BACKBURNER_APP) and its tasks."""

import os

from backburner import Backburner

app = Backburner(os.environ["BB_TEST_URL"])


@app.task
def record_order(order_id: int) -> str:
    """A sync task using the ORM in the worker (a thread of its own): reads the row the view
    committed and marks it."""
    from shop.models import Order

    order = Order.objects.get(pk=order_id)
    order.processed = True
    order.save(update_fields=["processed"])
    return order.name


@app.task
def double(n: int) -> int:
    return n * 2
