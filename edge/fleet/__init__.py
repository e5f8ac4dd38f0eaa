"""Learning across hubs without data leaving them: federated fine-tuning of the student's head.

A care home's hubs train the shared head (:mod:`edge.personal.head`) on their residents'
confirmed labels with Flower; only model updates leave a hub. One module per job, each
imported where it is used (importing this package imports neither flwr nor anything heavy):

- :mod:`~edge.fleet.pseudonym`: keyed pseudonyms for anything naming a resident that leaves a hub;
- :mod:`~edge.fleet.accountant`: (ε, δ) of the Gaussian mechanism over rounds (Rényi DP);
- :mod:`~edge.fleet.options`: the federation's settings, one typed record;
- :mod:`~edge.fleet.local_data`: what a hub trains on (embeddings, confirmed labels), on disk;
- :mod:`~edge.fleet.client`: the hub's ClientApp;
- :mod:`~edge.fleet.server`: the coordinator's ServerApp (FedAvg / FedProx, central or local DP);
- :mod:`~edge.fleet.simulate`: a whole federation on one machine (Flower's simulation runtime);
- :mod:`~edge.fleet.plots`: the simulation's figures (host: matplotlib);
- :mod:`~edge.fleet.dp`: Flower's central DP wrapper and local DP mod, calibrated to a target ε;
- :mod:`~edge.fleet.residents`: a simulated care home's residents and their confirmed windows;
- :mod:`~edge.fleet.deploy`: ``join``, a hub's Flower SuperNode in a real care home;
- :mod:`~edge.fleet.cli`: ``edge-fleet``.
"""
