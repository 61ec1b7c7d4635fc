"""The Training tab: the run form, Start/Stop, the queue and the live monitor."""
