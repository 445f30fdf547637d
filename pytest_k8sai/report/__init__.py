"""Reports: tables printed at the end of a run and written to the results directory."""
