# Shortcuts; each is the same as the quickstart.py command beside it.
.PHONY: demo test ui validate bench

demo:            ## python3 quickstart.py demo
	python3 quickstart.py demo

test:            ## python3 quickstart.py test
	python3 quickstart.py test

ui:              ## python3 quickstart.py ui
	python3 quickstart.py ui

validate:        ## check that the code location loads
	DAGSTER_HOME=$(CURDIR) .venv/bin/dagster definitions validate -m evalflow.definitions

bench:
	.venv/bin/python benchmarks/ingest.py
