package passkey

// DefaultPerPage is the page size when a request gives none (Hanko's, docs/hanko-compatibility.md).
const DefaultPerPage = 20

// MaxPerPage bounds the page size, so one request cannot ask for a whole table.
const MaxPerPage = 1000

// Page selects one page of a list. Every list of the service (credentials, users, transactions, audit
// events) pages this way, and db answers all of them with one query.
type Page struct {
	// Number counts from 1; a number below 1 is page 1.
	Number int
	// Size is the page size; a size below 1 is DefaultPerPage.
	Size int
}

// Normalized returns p with the defaults applied.
func (p Page) Normalized() Page {
	if p.Number < 1 {
		p.Number = 1
	}
	if p.Size < 1 {
		p.Size = DefaultPerPage
	}
	return p
}

// Offset is how many items come before the page.
func (p Page) Offset() int {
	p = p.Normalized()
	return (p.Number - 1) * p.Size
}
