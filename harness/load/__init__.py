"""Load generation: the conversations the benchmarks hold (flows) and the two
closed-loop drivers that hold them, over Rasa's REST channel (rest) and over
socket.io as the web widget does (widget)."""
