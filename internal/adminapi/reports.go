package adminapi

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/reports"
	"github.com/msgrunner/msgrunner/validation"
)

//go:embed templates/reports.html
var templatesFS embed.FS

var reportsPage = template.Must(template.New("reports.html").Funcs(template.FuncMap{
	"cell": func(v any) string {
		switch x := v.(type) {
		case nil:
			return "–"
		case time.Time:
			return x.UTC().Format("2006-01-02 15:04")
		case float64:
			return strconv.FormatFloat(x, 'f', 2, 64)
		default:
			return fmt.Sprint(x)
		}
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}).ParseFS(templatesFS, "templates/reports.html"))

// reportParams reads from, to, interval and limit from the query string;
// the default range is the last 24 hours.
func reportParams(c echo.Context) (reports.Params, error) {
	from, to := reports.DefaultRange(time.Now())
	p := reports.Params{From: from, To: to, Interval: time.Hour, Limit: 50}
	if v := c.QueryParam("from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return p, validation.Errorf("from", "must be an RFC 3339 time")
		}
		p.From = t
	}
	if v := c.QueryParam("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return p, validation.Errorf("to", "must be an RFC 3339 time")
		}
		p.To = t
	}
	if v := c.QueryParam("interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return p, validation.Errorf("interval", "must be a duration such as 15m or 1h")
		}
		p.Interval = d
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, validation.Errorf("limit", "must be an integer")
		}
		p.Limit = n
	}
	return p, p.Validate()
}

// reportReads returns where reports run: the read replica while it keeps
// up (a report may miss the last seconds of writes), else the pool.
func (s *Server) reportReads() db.Querier {
	if s.cfg.Replica != nil {
		return s.cfg.Replica.Reads()
	}
	return s.pool
}

func (s *Server) reportJSON(c echo.Context) error {
	p, err := reportParams(c)
	if err != nil {
		return err
	}
	r, err := reports.Run(c.Request().Context(), s.reportReads(), c.Param("name"), p)
	if err != nil {
		var ve *validation.Error
		if asValidation(err, &ve) && ve.Field == "name" {
			return newError(http.StatusNotFound, "report_not_found", ve.Problem)
		}
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// chart is a server-rendered SVG bar chart of the delivery funnel.
type chart struct {
	Width, Height int
	Bars          []bar
	Labels        []label
	Max           int64
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type label struct {
	X, Y float64
	Text string
}

func deliveryChart(r *reports.Report) *chart {
	if len(r.Rows) == 0 {
		return nil
	}
	ch := &chart{Width: 900, Height: 220}
	series := []struct {
		col   int
		class string
	}{{1, "created"}, {3, "delivered"}, {4, "read"}}
	for _, row := range r.Rows {
		for _, sr := range series {
			if v, ok := row[sr.col].(int64); ok && v > ch.Max {
				ch.Max = v
			}
		}
	}
	if ch.Max == 0 {
		ch.Max = 1
	}
	// Every interval of the range gets a slot, empty ones included, so the
	// time axis is even.
	p := r.Params
	start := p.From.Add(-(p.From.Sub(db.BucketOrigin) % p.Interval)) // the bucket holding From
	slots := int(math.Ceil(float64(p.To.Sub(start)) / float64(p.Interval)))
	plotH := float64(ch.Height - 30)
	slot := float64(ch.Width) / float64(max(slots, 1))
	bw := slot / float64(len(series)+1)
	for _, row := range r.Rows {
		t, _ := row[0].(time.Time)
		i := float64(t.Sub(start) / p.Interval)
		for j, sr := range series {
			v, _ := row[sr.col].(int64)
			h := plotH * float64(v) / float64(ch.Max)
			ch.Bars = append(ch.Bars, bar{
				X: i*slot + float64(j)*bw, Y: plotH - h, W: bw * 0.9, H: h, Class: sr.class,
				Title: fmt.Sprintf("%s %s: %d", t.UTC().Format("01-02 15:04"), sr.class, v),
			})
		}
	}
	every := max(1, int(math.Ceil(float64(slots)/8)))
	for i := 0; i < slots; i += every {
		t := start.Add(time.Duration(i) * p.Interval)
		ch.Labels = append(ch.Labels, label{X: float64(i) * slot, Y: float64(ch.Height - 8), Text: t.UTC().Format("01-02 15:04")})
	}
	return ch
}

func (s *Server) reportsPage(c echo.Context) error {
	p, err := reportParams(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var all []*reports.Report
	for _, name := range reports.Names() {
		r, err := reports.Run(ctx, s.reportReads(), name, p)
		if err != nil {
			return err
		}
		all = append(all, r)
	}
	var buf bytes.Buffer
	if err := reportsPage.Execute(&buf, map[string]any{
		"Params": p, "Reports": all, "Chart": deliveryChart(all[0]), "IntervalText": p.Interval.String(),
	}); err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
