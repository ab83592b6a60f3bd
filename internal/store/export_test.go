package store

// DisplayTokensSQL is the query of Store.DisplayTokens, for the modern-ClickHouse check.
const DisplayTokensSQL = displayTokensSelect + displayTokensGroup
