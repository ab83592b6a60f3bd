package store

// AnnotationsSQL is the query of Store.Annotations, for the modern-ClickHouse check.
var AnnotationsSQL = annotationsSQL
