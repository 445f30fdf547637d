"""The scale tier: Kueue at cluster scale on the local tier (KWOK nodes, thousands of workloads).

Pure logic only: scenarios as data (``scenario``, ``kueueperf``), the objects and submission
schedule a scenario becomes (``plan``), the submission pacer (``submit``), process CPU and
memory figures (``procstats``), the growth fit across sizes (``growth``) and its table and
plot over several runs' results (``growth_report``); the pod-less
Workload bodies and status patches (``workloads``), the recorder of admissions (``record``),
the time budget (``budget``), deferred status changes (``finisher``), the result record
(``results``, ``summary``). On a cluster: the KWOK nodes (``nodes``), the Workload watch
(``watch``), Kueue's admission attempts during a run (``attempts``) and one run end to end
(``run``).
"""
