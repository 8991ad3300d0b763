"""The dashboard's pages, one module per resource, each adding its routes to the router
`dashboard_router` builds (in routing order: see `backburner.dashboard.routes`)."""
