package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
	"github.com/truthboard/truthboard/internal/store"
)

// credentialCommand is a command that manages one kind of stored credential directly in
// ClickHouse, with the settings of `truthboard migrate`: create -name NAME, list, revoke ID.
type credentialCommand struct {
	command string // e.g. "key"
	kind    auth.Kind
	create  func(*store.Store, context.Context, auth.Credential) error
	list    func(*store.Store, context.Context) ([]auth.Credential, error)
	revoke  func(*store.Store, context.Context, string, time.Time) (bool, error)
	// use says how to use a new credential, printed after it.
	use func(secret string) string
}

// ingestKeyCommand is `truthboard key`: stored ingest keys, which every server accepts (or,
// once revoked, refuses) within -display-token-refresh, without a restart.
var ingestKeyCommand = credentialCommand{command: "key", kind: auth.IngestKeyKind,
	create: (*store.Store).CreateIngestKey, list: (*store.Store).IngestKeys, revoke: (*store.Store).RevokeIngestKey,
	use: func(key string) string { return "Send it as Authorization: Bearer " + key + " to POST /v1/events." }}

// displayTokenCommand is `truthboard token`: read-only display tokens for TV walls, which every
// server refuses within -display-token-refresh of their revocation.
var displayTokenCommand = credentialCommand{command: "token", kind: auth.DisplayTokenKind,
	create: (*store.Store).CreateDisplayToken, list: (*store.Store).DisplayTokens, revoke: (*store.Store).RevokeDisplayToken,
	use: func(token string) string { return "Open a dashboard with ?token=<token>, e.g. /tv?token=" + token }}

// runToken is `truthboard token …`.
func runToken(ctx context.Context, args []string, out io.Writer) error {
	return displayTokenCommand.run(ctx, args, out)
}

// runKey is `truthboard key …`.
func runKey(ctx context.Context, args []string, out io.Writer) error {
	return ingestKeyCommand.run(ctx, args, out)
}

func (cc credentialCommand) run(ctx context.Context, args []string, out io.Writer) error {
	use := "usage: truthboard " + cc.command + " create -name NAME | " + cc.command + " list | " + cc.command +
		" revoke ID (plus the ClickHouse flags of migrate)"
	if len(args) == 0 {
		return errors.New(use)
	}
	sub, rest := args[0], args[1:]
	var name, id string
	var settings []string
	// Our own arguments are taken out; the rest are the settings of `truthboard migrate`.
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case sub == "create" && (a == "-name" || a == "--name"):
			if i+1 == len(rest) {
				return errors.New("-name needs a value, e.g. -name " + cc.exampleName())
			}
			name = rest[i+1]
			i++
		case sub == "create" && (strings.HasPrefix(a, "-name=") || strings.HasPrefix(a, "--name=")):
			_, name, _ = strings.Cut(a, "=")
		case sub == "revoke" && id == "" && !strings.HasPrefix(a, "-"):
			id = a
		default:
			settings = append(settings, a)
		}
	}
	switch sub {
	case "create":
		if err := cc.kind.ValidateName(name); err != nil {
			return fmt.Errorf("-name %w", err)
		}
	case "revoke":
		if !auth.ValidCredentialID(id) {
			return fmt.Errorf("revoke needs the id of %s (16 hex digits, see `truthboard %s list`), got %q",
				cc.kind.ANoun(), cc.command, id)
		}
	case "list":
	default:
		return fmt.Errorf("unknown %s command %q; %s", cc.command, sub, use)
	}

	cfg, db, _, err := openMigrated(ctx, settings)
	if err != nil {
		return err
	}
	defer db.Close()

	switch sub {
	case "create":
		c, secret := cc.kind.New(name, time.Now())
		if err := cc.create(db, ctx, c); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %q created (id %s). It is shown only now:\n\n  %s\n\n%s\n", capitalized(cc.kind.Noun), c.Name, c.ID, secret, cc.use(secret))
	case "list":
		all, err := cc.list(db, ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-16s  %-20s  %-20s  %s\n", "ID", "CREATED", "REVOKED", "NAME")
		for _, c := range all {
			revoked := "-"
			if c.Revoked() {
				revoked = c.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(out, "%-16s  %-20s  %-20s  %s\n", c.ID, c.CreatedAt.UTC().Format(time.RFC3339), revoked, c.Name)
		}
	case "revoke":
		found, err := cc.revoke(db, ctx, id, time.Now())
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no %s has the id %s (see `truthboard %s list`)", cc.kind.Noun, id, cc.command)
		}
		fmt.Fprintf(out, "%s %s revoked; every server refuses it within %s (-display-token-refresh).\n",
			strings.ToUpper(cc.kind.Noun[:1])+cc.kind.Noun[1:], id, cfg.DisplayTokenRefresh)
	}
	return nil
}

// exampleName is the example in the kind's name hint, quoted for a shell.
func (cc credentialCommand) exampleName() string {
	_, ex, ok := strings.Cut(cc.kind.NameHint, "e.g. ")
	if !ok {
		return `"NAME"`
	}
	return ex
}

// capitalized is s with its first letter in upper case ("ingest key" → "Ingest key").
func capitalized(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
