package tenant

// Hooks for the external tests of this directory (package tenant_test). This file is compiled only by
// go test.

// Cached returns how many snapshots d holds, once its cache has done the evictions it owes.
func (d *Directory) Cached() int {
	d.snapshots.CleanUp()
	return d.snapshots.EstimatedSize()
}
