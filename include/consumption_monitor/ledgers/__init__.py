"""Work ledgers (工作台账): Excel templates, their reading and sample files."""
