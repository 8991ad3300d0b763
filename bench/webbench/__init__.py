"""`python bench/web.py`: a FastAPI app under uvicorn, loaded by wrk, one background job per
request, a separate worker draining at the same time. See bench/README.md."""
