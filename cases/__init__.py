"""The documented failures of small MLPs, each encoded as a case: data, failing run, fixes."""
