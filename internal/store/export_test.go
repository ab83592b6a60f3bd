package store

// DisplayTokensSQL is the query of Store.DisplayTokens, for the modern-ClickHouse check.
const DisplayTokensSQL = displayTokensSelect + displayTokensGroup

// MarkUnavailable is err as a method of Store returns it: marked when the connection failed.
func MarkUnavailable(err error) error {
	markUnavailable(&err)
	return err
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
