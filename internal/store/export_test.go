package store

import "github.com/truthboard/truthboard/internal/rollup"

// DisplayTokensSQL is the query of Store.DisplayTokens, for the modern-ClickHouse check.
const DisplayTokensSQL = displayTokensSelect + displayTokensGroup

// MarkUnavailable is err as a method of Store returns it: marked when the connection failed.
func MarkUnavailable(err error) error {
	markUnavailable(&err)
	return err
}

// RollupOrderedSQL is the query of Store.RollupEach, for the modern-ClickHouse check.
func RollupOrderedSQL(q rollup.Query, p rollup.Plan) (string, []any) {
	return rollupSQL(q, p, true, keyRange{})
}

// RollupPageSQL is the query of one page of Store.RollupEach, keys from <= keys < to.
func RollupPageSQL(q rollup.Query, p rollup.Plan, from, to []any) (string, []any) {
	return rollupSQL(q, p, true, keyRange{from, to})
}

// SetMaxGroups makes Rollup read at most n groups until restore is called.
func SetMaxGroups(n int) (restore func()) {
	was := maxGroups
	maxGroups = n
	return func() { maxGroups = was }
}

// SetPageGroups makes the pages of RollupEach hold about n groups until restore is called.
func SetPageGroups(n int) (restore func()) {
	was := pageGroups
	pageGroups = n
	return func() { pageGroups = was }
}

// MarkInvalidData is err as InsertReceived returns it: marked when it is about the values.
func MarkInvalidData(err error) error {
	markInvalidData(&err)
	return err
}

// ViewTargets are the tables the migrations' materialized views feed.
func ViewTargets() ([]string, error) {
	views, err := viewQueries()
	var out []string
	for t := range views {
		out = append(out, t)
	}
	return out, err
}
