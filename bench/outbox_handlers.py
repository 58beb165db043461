"""The subscriber the outbox benchmark delivers to (imported by the publisher and, with
``--include``, by the worker)."""

from integrations.events import subscriber


@subscriber("patient.created", name="bench.noop")
def bench_noop(event, delivery):
    """Does nothing: the benchmark measures the framework's own cost per delivery."""
