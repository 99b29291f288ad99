package channelspec

// SchemaHeld reports whether the compiled schema is still in memory.
func SchemaHeld() bool {
	cachedSchema.Lock()
	defer cachedSchema.Unlock()
	return cachedSchema.schema.Value() != nil
}
