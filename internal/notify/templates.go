package notify

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	texttemplate "text/template"

	"github.com/msgrunner/msgrunner/jobs"
)

// Channel names (package jobs owns them).
const (
	ChannelPush  = jobs.ChannelPush
	ChannelEmail = jobs.ChannelEmail
	ChannelSMS   = jobs.ChannelSMS
	ChannelInApp = jobs.ChannelInApp
)

// ErrNoTemplate is returned by Render for a notification type that has no
// templates.
var ErrNoTemplate = errors.New("no notification template for this type")

//go:embed templates/*.tmpl
var builtin embed.FS

// Vars are the variables a template sees.
type Vars struct {
	// SenderName is the sender's display name (PUT /v1/me/profile), or
	// the sender id when the sender set none.
	SenderName string
	SenderID   string
	// Preview is the start of the message, or a fixed sentence for an
	// encrypted or deleted message: never its ciphertext or plaintext.
	Preview        string
	ConversationID string
	MessageID      string
	// Encrypted reports that the message is encrypted at rest.
	Encrypted bool
}

// SampleVars are the variables templates are checked with at load time.
var SampleVars = Vars{
	SenderName: "Alice", SenderID: "00000000-0000-4000-8000-00000000a11c",
	Preview: `Hello <b>"Bob"</b> & friends`, ConversationID: "00000000-0000-4000-8000-0000000c0a00",
	MessageID: "00000000-0000-4000-8000-000000000001",
}

// Content is a rendered notification. For email Title is the subject,
// Body the text/plain part and HTML the text/html part; SMS has no title.
type Content struct {
	Title, Body, HTML string
}

// parts each channel needs.
var requiredParts = map[string][]string{
	ChannelInApp: {"title", "body"},
	ChannelPush:  {"title", "body"},
	ChannelEmail: {"title", "body", "html"},
	ChannelSMS:   {"body"},
}

type channelTemplates struct {
	title, body *texttemplate.Template
	html        *htmltemplate.Template
}

// Templates holds every (type, channel) template set. It is immutable
// after LoadTemplates and safe for concurrent use.
type Templates struct {
	sets map[string]*channelTemplates // key: type + "." + channel
}

// LoadTemplates parses the built-in templates and, when dir is not empty,
// the files of dir, which replace built-in ones of the same name or add new
// types. Files are named {type}.{channel}.{part}.tmpl, part being title,
// body or html (html for email only; SMS needs only a body). Every part is
// text/template except html, which is html/template. Each type must cover
// every channel, and each template is executed against SampleVars (and an
// encrypted variant): an error names the file.
func LoadTemplates(dir string) (*Templates, error) {
	files := map[string]string{}
	if err := readTemplates(builtin, "templates", files); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := readTemplates(os.DirFS(dir), ".", files); err != nil {
			return nil, err
		}
	}
	t := &Templates{sets: map[string]*channelTemplates{}}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	types := map[string]bool{}
	for _, name := range names {
		typ, channel, part, err := splitName(name)
		if err != nil {
			return nil, err
		}
		types[typ] = true
		set := t.sets[typ+"."+channel]
		if set == nil {
			set = &channelTemplates{}
			t.sets[typ+"."+channel] = set
		}
		src := files[name]
		if part == "html" {
			h, err := htmltemplate.New(name).Option("missingkey=error").Parse(src)
			if err != nil {
				return nil, fmt.Errorf("notification template %s: %w", name, err)
			}
			set.html = h
			continue
		}
		tt, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("notification template %s: %w", name, err)
		}
		if part == "title" {
			set.title = tt
		} else {
			set.body = tt
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(types)) {
		for _, channel := range []string{ChannelInApp, ChannelPush, ChannelEmail, ChannelSMS} {
			set := t.sets[typ+"."+channel]
			for _, part := range requiredParts[channel] {
				if set == nil || (part == "title" && set.title == nil) || (part == "body" && set.body == nil) || (part == "html" && set.html == nil) {
					return nil, fmt.Errorf("notification template %s.%s.%s.tmpl is missing", typ, channel, part)
				}
			}
			encrypted := SampleVars
			encrypted.Preview, encrypted.Encrypted = "New encrypted message", true
			for _, v := range []Vars{SampleVars, encrypted} {
				c, err := t.Render(typ, channel, v)
				if err != nil {
					return nil, err
				}
				if strings.TrimSpace(c.Body) == "" || (set.title != nil && strings.TrimSpace(c.Title) == "") {
					return nil, fmt.Errorf("notification templates of %s.%s render an empty title or body", typ, channel)
				}
			}
		}
	}
	return t, nil
}

// readTemplates adds the *.tmpl files of fsys's directory dir to files.
func readTemplates(fsys fs.FS, dir string, files map[string]string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("reading notification templates: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("reading notification template %s: %w", e.Name(), err)
		}
		// The newline that ends a file is not part of the template.
		files[e.Name()] = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	return nil
}

// splitName parses {type}.{channel}.{part}.tmpl.
func splitName(name string) (typ, channel, part string, err error) {
	f := strings.Split(strings.TrimSuffix(name, ".tmpl"), ".")
	if len(f) != 3 || f[0] == "" {
		return "", "", "", fmt.Errorf("notification template %s: name must be {type}.{channel}.{part}.tmpl", name)
	}
	typ, channel, part = f[0], f[1], f[2]
	parts, ok := requiredParts[channel]
	if !ok {
		return "", "", "", fmt.Errorf("notification template %s: unknown channel %q (push, email, sms or in_app)", name, channel)
	}
	if !slices.Contains(parts, part) && !(channel == ChannelSMS && part == "title") {
		return "", "", "", fmt.Errorf("notification template %s: channel %s has no part %q (it has %s)", name, channel, part, strings.Join(parts, ", "))
	}
	return typ, channel, part, nil
}

// Has reports whether typ has templates.
func (t *Templates) Has(typ string) bool {
	_, ok := t.sets[typ+"."+ChannelInApp]
	return ok
}

// Render fills the templates of typ on channel with v. It returns
// ErrNoTemplate for an unknown type or channel.
func (t *Templates) Render(typ, channel string, v Vars) (Content, error) {
	set, ok := t.sets[typ+"."+channel]
	if !ok {
		return Content{}, fmt.Errorf("%w: %q on %s", ErrNoTemplate, typ, channel)
	}
	var c Content
	var buf bytes.Buffer
	if set.title != nil {
		if err := set.title.Execute(&buf, v); err != nil {
			return Content{}, fmt.Errorf("notification template %s: %w", set.title.Name(), err)
		}
		c.Title = buf.String()
		buf.Reset()
	}
	if err := set.body.Execute(&buf, v); err != nil {
		return Content{}, fmt.Errorf("notification template %s: %w", set.body.Name(), err)
	}
	c.Body = buf.String()
	if set.html != nil {
		buf.Reset()
		if err := set.html.Execute(&buf, v); err != nil {
			return Content{}, fmt.Errorf("notification template %s: %w", set.html.Name(), err)
		}
		c.HTML = buf.String()
	}
	return c, nil
}
