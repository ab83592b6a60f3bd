package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/annotation"
)

// Annotations (clickhouse/migrations/0009_annotations.sql): every write appends the whole
// annotation with a larger version; the readers take each id's row of largest version.

// annotationColumns are the columns WriteAnnotation writes (always named: see eventColumns).
const annotationColumns = "id, time_ms, time_end_ms, tags, text, moment, channel, created_ms, version, deleted"

// WriteAnnotation records a as it is at version (the write's time): created or changed, or
// deleted when deleted is true.
func (s *Store) WriteAnnotation(ctx context.Context, a annotation.Annotation, version time.Time, deleted bool) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO annotations ("+annotationColumns+")")
	if err != nil {
		return fmt.Errorf("prepare write of annotation %s: %w", a.ID, err)
	}
	defer batch.Abort()
	var del uint8
	if deleted {
		del = 1
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	if err := batch.Append(a.ID, a.Time, a.TimeEnd, tags, a.Text, a.Moment, a.Channel, a.Created, version.UnixNano(), del); err != nil {
		return fmt.Errorf("write annotation %s: %w", a.ID, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("write annotation %s: %w", a.ID, err)
	}
	return nil
}

// annotationsSelect reads each annotation's latest state; conditions on it go in HAVING.
const annotationsSelect = `SELECT id, argMax(time_ms, version) AS a_time, argMax(time_end_ms, version) AS a_end,
	argMax(tags, version) AS a_tags, argMax(text, version), argMax(moment, version) AS a_moment,
	argMax(channel, version) AS a_channel, min(created_ms), max(version), argMax(deleted, version) AS a_deleted
FROM annotations`

// annotationsSQL is the query of Annotations and its arguments.
func annotationsSQL(f annotation.Filter) (string, []any) {
	having := []string{"a_deleted = 0", "a_end >= ?", "a_time <= ?"}
	// Only the ids with a version in the range are grouped: the latest version of an id that
	// qualifies is such a version, and the table's other ids (older annotations, most of it)
	// are skipped before the costly argMax of their texts and tags.
	args := []any{f.From.UnixMilli(), f.To.UnixMilli(), f.From.UnixMilli(), f.To.UnixMilli()}
	if len(f.Tags) > 0 {
		having, args = append(having, "hasAll(a_tags, ?)"), append(args, f.Tags)
	}
	if f.Moment != "" {
		having, args = append(having, "(a_moment = '' OR a_moment = ?)"), append(args, f.Moment)
	}
	if f.Channel != "" {
		having, args = append(having, "(a_channel = '' OR a_channel = ?)"), append(args, f.Channel)
	}
	return annotationsSelect + "\nWHERE id IN (SELECT id FROM annotations WHERE time_end_ms >= ? AND time_ms <= ?)" +
		"\nGROUP BY id HAVING " + strings.Join(having, " AND ") +
		"\nORDER BY a_time DESC, id LIMIT " + strconv.Itoa(f.Limit), args
}

// Annotations lists the annotations f selects, the latest first (by time), at most f.Limit
// (1 to annotation.MaxList).
func (s *Store) Annotations(ctx context.Context, f annotation.Filter) ([]annotation.Annotation, error) {
	if f.Limit < 1 || f.Limit > annotation.MaxList {
		return nil, fmt.Errorf("annotations: limit %d is out of range; ask for 1 to %d", f.Limit, annotation.MaxList)
	}
	sql, args := annotationsSQL(f)
	return s.readAnnotations(ctx, sql, args...)
}

// RecentAnnotations lists the annotations that end at or after since, the latest first, at
// most limit of them (annotation.Load, for the live feeds' cache).
func (s *Store) RecentAnnotations(ctx context.Context, since time.Time, limit int) ([]annotation.Annotation, error) {
	if limit < 1 || limit > annotation.MaxCached {
		return nil, fmt.Errorf("recent annotations: limit %d is out of range; ask for 1 to %d", limit, annotation.MaxCached)
	}
	sql, args := annotationsSQL(annotation.Filter{From: since, To: time.UnixMilli(1<<62 - 1), Limit: limit})
	return s.readAnnotations(ctx, sql, args...)
}

// AnnotationsStamp returns a checksum of the annotations table's rows (id and version, 0 when
// empty): every write appends a row, so it moves with every change, whatever the writing
// node's clock says of the version (annotation.Stamp). A merge that drops superseded rows moves
// it too, which costs one reload. It reads two columns, where RecentAnnotations groups the
// table.
func (s *Store) AnnotationsStamp(ctx context.Context) (int64, error) {
	conn, err := s.connection()
	if err != nil {
		return 0, err
	}
	var v uint64
	if err := conn.QueryRow(ctx, "SELECT sum(cityHash64(id, version)) FROM annotations").Scan(&v); err != nil {
		return 0, fmt.Errorf("annotations' stamp: %w", err)
	}
	return int64(v), nil
}

// Annotation returns the annotation id; found is false when there is none, or it was deleted.
func (s *Store) Annotation(ctx context.Context, id string) (a annotation.Annotation, found bool, err error) {
	list, err := s.readAnnotations(ctx, annotationsSelect+"\nWHERE id = ? GROUP BY id HAVING a_deleted = 0", id)
	if err != nil || len(list) == 0 {
		return annotation.Annotation{}, false, err
	}
	return list[0], true, nil
}

func (s *Store) readAnnotations(ctx context.Context, sql string, args ...any) (_ []annotation.Annotation, err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read annotations: %w", err)
	}
	defer rows.Close()
	out := []annotation.Annotation{}
	for rows.Next() {
		var (
			a       annotation.Annotation
			version int64
			deleted uint8
		)
		if err := rows.Scan(&a.ID, &a.Time, &a.TimeEnd, &a.Tags, &a.Text, &a.Moment, &a.Channel, &a.Created, &version, &deleted); err != nil {
			return nil, fmt.Errorf("read annotations: %w", err)
		}
		a.Updated = version / int64(time.Millisecond)
		if a.Tags == nil {
			a.Tags = []string{}
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read annotations: %w", err)
	}
	return out, nil
}
