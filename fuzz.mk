# Robustness targets; the Makefile includes this file (`include fuzz.mk`).
#   make fuzz        -- long randomized fuzzing of every network decoder (GETHP2P_FUZZ=long:
#                       20,000 examples per test; FUZZ_EXAMPLES=N to change). Not part of `make test`.
#   make soak        -- full soak runs (2,000 server cycles; 24 discovery nodes for 5 minutes;
#                       50 connections claiming 16 MiB frames against a p2pnode, before and after the hello;
#                       2,000 junk connections against a p2pnode, absorbed in under 0.5 s;
#                       10,000 pings from fresh keys leave nothing in discovery's node database;
#                       6 p2pnodes finding each other by a discv5 topic; 20 discv5 Networks
#                       searching a topic on 127.0.0.1 and the discv5 simulations at full size;
#                       20,000 fresh identities bonding with a discv5 node and going silent, and a
#                       minute of fresh identities sending it premature topic registrations)
#   make soak-quick  -- the same scripts with reduced counts (a few minutes: the discv5 topic
#                       run can wait out geth's one-minute tickets)
FUZZ_EXAMPLES ?= 20000

.PHONY: fuzz soak soak-quick

fuzz: $(STAMP)
	GETHP2P_FUZZ=long GETHP2P_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q --timeout=0 tests/fuzz $(PYTEST_ARGS)

soak: $(STAMP)
	$(PY) -m soak.soak_server --cycles 2000 --parallel 4
	$(PY) -m soak.soak_discovery --nodes 24 --seconds 300
	$(PY) -m tests.test_attacks --conns 50
	$(PY) -m tests.test_junk_conns --conns 2000
	$(PY) -m tests.discover.test_nodedb_flood --ids 10000
	$(PY) -m soak.soak_v5_topic --nodes 6 --timeout 600
	GETHP2P_V5_NETWORK=1 GETHP2P_SIM_FULL=1 $(PY) -m pytest -q -s tests/discv5/test_v5_network.py tests/discv5/test_sim.py
	$(PY) -m tests.discv5.flood --ids 20000 --max-nodes 4200
	$(PY) -m tests.discv5.flood --topic --seconds 60 --max-infos 10000 --max-nodes 14200

soak-quick: $(STAMP)
	$(PY) -m soak.soak_server --cycles 200 --parallel 4
	$(PY) -m soak.soak_discovery --nodes 12 --seconds 30
	$(PY) -m tests.test_attacks --conns 20
	$(PY) -m tests.test_junk_conns --conns 500 --goal 0.5
	$(PY) -m tests.discover.test_nodedb_flood --ids 2000
	$(PY) -m soak.soak_v5_topic --nodes 3 --timeout 300
	GETHP2P_V5_NETWORK=1 $(PY) -m pytest -q -s tests/discv5/test_v5_network.py
	$(PY) -m tests.discv5.flood --ids 6000 --max-nodes 4200
