"""The Backburner demo: every scenario of the seed tutorials (S1-S19, listed in the README) as one
FastAPI app on durable jobs.

Layout, one concern per module: `settings` (environment), `tasks` (every task, registered on
one Backburner app), `routes/` (one router per group of scenarios), `mail` (SMTP client),
`smtp_sink` (local SMTP server), `local_sink` (the demo's own sink, found by every worker
through the data directory), `maillog` (email stats), `ssrf` (outgoing HTTP guard),
`uploads` (streamed multipart), `web` (the app factory), `worker` (the factory for
`backburner worker`), `run` (`backburner demo`).
"""
