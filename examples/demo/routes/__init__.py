"""One router factory per concern; `examples.demo.web.create_app` mounts them all."""
