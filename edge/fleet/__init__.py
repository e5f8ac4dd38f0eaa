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
- :mod:`~edge.fleet.secagg`: the ServerApp / ClientApp pair aggregating under SecAgg+ (the
  coordinator sees only the hubs' sum; Flower's legacy path);
- :mod:`~edge.fleet.simulate`: a whole federation on one machine (Flower's simulation runtime);
- :mod:`~edge.fleet.plots`: the simulation's figures (host: matplotlib);
- :mod:`~edge.fleet.dp`: Flower's central DP wrapper and local DP mod, calibrated to a target ε;
- :mod:`~edge.fleet.subspace`: the head's update in a few public directions (what hubs send);
- :mod:`~edge.fleet.residents`: a simulated care home's residents and their confirmed windows;
- :mod:`~edge.fleet.deploy`: ``join``, a hub's Flower SuperNode in a real care home;
- :mod:`~edge.fleet.hub_options`, :mod:`~edge.fleet.member`: ``edge-daemon --fleet``, the
  hub's training file from its database and its SuperNode as a supervised child;
- :mod:`~edge.fleet.coordinator`: the deployed ServerApp (rounds from a run config, the
  signed head update sent to the hubs);
- :mod:`~edge.fleet.delivery`: that update in one message, written whole into a hub's update folder;
- :mod:`~edge.fleet.serve`: ``edge-fleet serve``, the coordinator in one command;
- :mod:`~edge.fleet.processes`: Flower's commands as child processes;
- :mod:`~edge.fleet.cli`: ``edge-fleet``.
"""
