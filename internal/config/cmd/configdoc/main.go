// Command configdoc writes docs/configuration.md from internal/config's
// list of settings; with -check it only reports whether the file is
// current. Run it from the module root (`make generate-config-doc`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/msgrunner/msgrunner/internal/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "configdoc: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("configdoc", flag.ContinueOnError)
	out := fs.String("o", config.DocPath, "the file to write")
	check := fs.Bool("check", false, "write nothing; fail when the file differs from what would be written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := config.Markdown()
	if *check {
		got, err := os.ReadFile(*out)
		if err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("%s is stale: run '%s' and commit the result", *out, config.DocCommand)
		}
		return nil
	}
	return os.WriteFile(*out, want, 0o644)
}
