"""An emulator of every outside service Entrega talks to, with faults on demand."""
