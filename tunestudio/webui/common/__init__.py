"""What every tab shares: the context, charts, and the guards that keep the UI safe."""
