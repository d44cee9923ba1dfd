package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
)

const usage = `usage: admin COMMAND [flags]

Commands:
  migrate up [--create-database]   apply all pending migrations
  migrate down [--to VERSION]      roll back one migration, or down to VERSION (0 empties the schema)
  migrate status [--json]          list migrations and whether each is applied
  migrate version                  print the current schema version
  token --user ID [--ttl 24h]      print a bearer token for user ID (signed with AUTH_SECRET)
  serve                            serve the admin API and River UI on ADMIN_ADDR (default :8080)
  jobs list [--queue Q] [--kind K] [--state S] [--limit N] [--all] [--json]
  jobs failed [--queue Q] [--kind K] [--limit N] [--json]
                                   list jobs (failed = discarded), newest first; the
                                   every-second sweeps (deliver-pending, index-pending)
                                   only with --all or --kind
  jobs show ID [--json]            one job: its args, every error, its recorded output
  jobs retry|cancel|delete ID...   act on jobs
  queue list [--json]              job counts per queue
  queue pause|resume NAME          stop or restart fetching from a queue
  queue retry-failed NAME [--kind K] [--limit N] [--json]
                                   retry the queue's discarded jobs (at most 100 by default)
  report NAME [--from T] [--to T] [--interval 1h] [--limit N] [--format table|csv|json] [--json]
                                   delivery, jobs, failures, notifications or broadcasts
                                   (default range: the last 24h)
  cleanup --type T [--retention-days N] [--batch-size N] [--dry-run] [--wait] [--json]
                                   enqueue a cleanup-messages job (old_messages,
                                   deleted_conversations, expired_attachments)
  encrypt --conversation ID [--wait] [--json]
                                   switch a conversation to encrypted and enqueue the
                                   job that seals its plaintext history
  export --conversation ID --requested-by UUID [--wait] [--json]
                                   enqueue a decrypted export of a conversation to the
                                   runner's EXPORT_DIR (the job's output names the file)
  rotate --conversation ID | --all [--reencrypt-content] [--json]
                                   enqueue rotate jobs: re-wrap data keys under
                                   ENCRYPTION_ACTIVE_KEY (--all: every conversation not
                                   under it); --reencrypt-content also moves content to a
                                   fresh data key and deletes the old one

Every command takes --help. Exit status: 0 done, 1 failed, 2 a mistake in the command line.

Environment: DATABASE_URL (default ` + config.DefaultDatabaseURL + `), AUTH_SECRET, AUTH_ISSUER, AUTH_AUDIENCE (token),
ADMIN_ADDR, ADMIN_TOKEN, ADMIN_VIEWER_TOKEN, ADMIN_INSECURE_DEV (serve), ENCRYPTION_ACTIVE_KEY (rotate --all)
`

// usageError is a mistake in the command line; it exits with status 2.
// Its message is followed by the usage of its command (cmd; the whole
// usage when it names none).
type usageError struct {
	msg string
	cmd string
}

func (e *usageError) Error() string { return e.msg + "\n\n" + usageOf(e.cmd) }

// commands are the command names, in the usage's order.
var commands = []string{"migrate", "token", "serve", "jobs", "queue", "report", "cleanup", "encrypt", "export", "rotate"}

// usageOf returns the usage lines of command cmd (with their continuation
// lines), or the whole usage for an empty or unknown cmd.
func usageOf(cmd string) string {
	if !slices.Contains(commands, cmd) {
		return usage
	}
	var b strings.Builder
	b.WriteString("usage:\n")
	in := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  "+cmd+" "):
			in = true
		case strings.HasPrefix(line, "   "):
			// A continuation line belongs to the command above it.
		default:
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\nadmin help lists every command.\n")
	return b.String()
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// exitCode is err's exit status: 2 for a usageError, else 1.
func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// Run runs one admin command: args are the command line without the
// program's name, getenv looks up environment variables (main passes
// os.Getenv), stdout receives the command's output and stderr its logs,
// audit lines and, on failure, one "admin: " error line. It returns the
// process's exit status: 0 on success, 2 for a mistake in the command line
// (the error is followed by the usage), 1 for any other failure. Run blocks
// until the command is done; `serve` runs until ctx is cancelled.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := run(ctx, args, getenv, stdout, stderr)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "admin: %v\n", err)
	return exitCode(err)
}

// run dispatches args to its command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "missing command"}
	}
	if slices.Contains(commands, args[0]) && (slices.ContainsFunc(args[1:], isHelp) || (len(args) > 1 && args[1] == "help")) {
		_, err := io.WriteString(stdout, usageOf(args[0]))
		return err
	}
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var u *usageError
	if errors.As(err, &u) && u.cmd == "" && slices.Contains(commands, args[0]) {
		u.cmd = args[0]
	}
	return err
}

// dispatch runs the command args name.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && slices.Contains(commands, args[1]) {
			_, err := io.WriteString(stdout, usageOf(args[1]))
			return err
		}
		_, err := io.WriteString(stdout, usage)
		return err
	case "token":
		return runToken(args[1:], getenv, stdout)
	case "serve":
		if len(args) > 1 {
			return &usageError{msg: "serve takes no arguments; configure it with environment variables"}
		}
		return runServe(ctx, getenv, stderr, nil)
	case "jobs":
		return runJobs(ctx, args[1:], getenv, stdout, stderr)
	case "queue":
		return runQueue(ctx, args[1:], getenv, stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], getenv, stdout, stderr)
	case "cleanup":
		return runCleanup(ctx, args[1:], getenv, stdout, stderr)
	case "encrypt":
		return runEncrypt(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], getenv, stdout, stderr)
	case "rotate":
		return runRotate(ctx, args[1:], getenv, stdout, stderr)
	default:
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
	}
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "migrate needs a subcommand: up, down, status or version"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("migrate "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	createDB := false
	to := int64(-1)
	asJSON := false
	switch sub {
	case "up":
		fs.BoolVar(&createDB, "create-database", false, "create the database named in DATABASE_URL if it does not exist")
	case "down":
		fs.Int64Var(&to, "to", -1, "roll back down to this version (0 empties the schema)")
	case "status":
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	case "version":
	default:
		return &usageError{msg: fmt.Sprintf("unknown migrate subcommand %q", sub)}
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("migrate %s: unexpected argument %q", sub, fs.Arg(0))}
	}
	if sub == "down" && to < -1 {
		return &usageError{msg: "migrate down: --to must be 0 or a positive version"}
	}

	r := config.NewReader(getenv)
	url := r.DatabaseURL()
	if err := r.Err(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}

	if createDB {
		created, err := db.EnsureDatabase(ctx, url)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stdout, "created database %s\n", db.Redact(url))
		}
	}

	m, err := db.NewMigrator(url, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()

	switch sub {
	case "up":
		res, err := m.Up(ctx)
		printResults(stdout, res)
		if err == nil && len(res) == 0 {
			fmt.Fprintln(stdout, "schema is up to date")
		}
		return err
	case "down":
		var res []db.MigrationResult
		if to >= 0 {
			res, err = m.DownTo(ctx, to)
		} else {
			res, err = m.Down(ctx)
		}
		printResults(stdout, res)
		if err == nil && len(res) == 0 {
			fmt.Fprintln(stdout, "nothing to roll back")
		}
		return err
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tSOURCE")
		for _, s := range st {
			state, at := "pending", "-"
			if s.Applied {
				state, at = "applied", s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Version, state, at, s.Source)
		}
		return tw.Flush()
	default: // version
		v, err := m.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, v)
		return nil
	}
}

func printResults(w io.Writer, res []db.MigrationResult) {
	for _, r := range res {
		fmt.Fprintf(w, "%-4s %5d  %-40s %s\n", r.Direction, r.Version, r.Source, r.Duration.Round(1e5))
	}
}

func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	userFlag := fs.String("user", "", "the user id (a UUID) the token authenticates")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("token: unexpected argument %q", fs.Arg(0))}
	}
	user, err := uuid.Parse(*userFlag)
	if err != nil || user == uuid.Nil {
		return &usageError{msg: "token: --user must be a user id (UUID)"}
	}
	if *ttl <= 0 || *ttl > 366*24*time.Hour {
		return &usageError{msg: "token: --ttl must be between 1s and 8784h"}
	}
	c := config.NewReader(getenv).Auth()
	if c.Secret == "" {
		return fmt.Errorf("%s is not set: it must be the gateway's signing secret", config.AuthSecret)
	}
	// The gateway requires its AUTH_ISSUER and AUTH_AUDIENCE when set.
	a, err := auth.New([]byte(c.Secret), auth.WithIssuer(c.Issuer), auth.WithAudience(c.Audience))
	if err != nil {
		return fmt.Errorf("%s: %w", config.AuthSecret, err)
	}
	tok, err := a.Mint(user, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// parseFlags parses args into fs, flags before or after the positional
// arguments (`queue retry-failed NAME --json`); fs.Args() are then the
// positional ones. A mistake is a usageError naming the flag and, for a
// duration or a number, the form it takes.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return flagError(fs, err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			// Everything after "--" is positional.
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// flagError is parseFlags' usageError for err.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -ttl: parse error
		if i := strings.Index(name, " for flag -"); i >= 0 {
			flagName := strings.SplitN(name[i+len(" for flag -"):], ":", 2)[0]
			if f := fs.Lookup(flagName); f != nil {
				switch f.Value.(flag.Getter).Get().(type) {
				case time.Duration:
					msg = fmt.Sprintf("--%s must be a duration such as 90s, 30m or 24h", flagName)
				case int, int64, uint, uint64:
					msg = fmt.Sprintf("--%s must be a whole number", flagName)
				case bool:
					msg = fmt.Sprintf("--%s takes no value (or =true, =false)", flagName)
				}
			}
		}
	}
	return &usageError{msg: fs.Name() + ": " + msg}
}
