"""The scale tier: Kueue at cluster scale on the local tier (KWOK nodes, thousands of workloads).

Pure logic only: scenarios as data (``scenario``, ``kueueperf``), the objects and submission
schedule a scenario becomes (``plan``), the submission pacer (``submit``), process CPU and
memory figures (``procstats``) and the growth fit across sizes (``growth``). Creating nodes,
submitting and recording admissions happen elsewhere.
"""
