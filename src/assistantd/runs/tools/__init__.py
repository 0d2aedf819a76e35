"""Tools a run can call: function tools pause the run for the client; server tools run here."""
