package admincli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/msgrunner/msgrunner/internal/reports"
)

func parseTime(flagName, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &usageError{msg: fmt.Sprintf("report: --%s must be an RFC 3339 time such as 2026-11-28T00:00:00Z", flagName)}
	}
	return t, nil
}

func runReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return &usageError{msg: fmt.Sprintf("report needs a name: %v", reports.Names())}
	}
	name := args[0]
	if !slices.Contains(reports.Names(), name) {
		return &usageError{msg: fmt.Sprintf("unknown report %q (want one of %s)", name, strings.Join(reports.Names(), ", "))}
	}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dFrom, dTo := reports.DefaultRange(time.Now())
	from := fs.String("from", dFrom.Format(time.RFC3339), "start of the range (RFC 3339; default 24h ago)")
	to := fs.String("to", dTo.Format(time.RFC3339), "end of the range (RFC 3339; default now)")
	interval := fs.Duration("interval", time.Hour, "bucket size of the delivery report")
	limit := fs.Int("limit", 50, "rows of the failures and broadcasts reports")
	format := fs.String("format", "table", "table, csv or json")
	asJSON := fs.Bool("json", false, "the same as --format json")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("report: unexpected argument %q", fs.Arg(0))}
	}
	if *asJSON {
		*format = "json"
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return &usageError{msg: "report: --format must be table, csv or json"}
	}
	p := reports.Params{Interval: *interval, Limit: *limit}
	var err error
	if p.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if p.To, err = parseTime("to", *to); err != nil {
		return err
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, false)
	if err != nil {
		return err
	}
	defer c.close()
	r, err := reports.Run(ctx, c.pool, name, p)
	if err != nil {
		return err
	}
	switch *format {
	case "csv":
		return reports.WriteCSV(stdout, r)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	default:
		return reports.WriteTable(stdout, r)
	}
}
