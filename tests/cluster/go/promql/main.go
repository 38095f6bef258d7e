// Command promql reads PromQL expressions (a JSON array of strings) on stdin and prints, for each, what it
// names: the metric and label names of every selector, and the labels of every grouping and vector matching.
// The tests use it to check that the chart's dashboards and alerts ask only for series the operator exports.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type selector struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
	// Values: the value each label must equal (matchers with =), to check against the values a scrape has.
	Values map[string]string `json:"values"`
}

type report struct {
	Expr      string     `json:"expr"`
	Error     string     `json:"error,omitempty"`
	Selectors []selector `json:"selectors"`
	Grouping  []string   `json:"grouping"`
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func inspect(promql parser.Parser, text string) report {
	out := report{Expr: text, Selectors: []selector{}, Grouping: []string{}}
	expr, err := promql.ParseExpr(text)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	grouping := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			names := map[string]bool{}
			values := map[string]string{}
			metric := n.Name
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName {
					if m.Type == labels.MatchEqual {
						metric = m.Value
					}
					continue
				}
				names[m.Name] = true
				if m.Type == labels.MatchEqual {
					values[m.Name] = m.Value
				}
			}
			out.Selectors = append(out.Selectors, selector{Metric: metric, Labels: sorted(names), Values: values})
		case *parser.AggregateExpr:
			for _, name := range n.Grouping {
				grouping[name] = true
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				for _, name := range n.VectorMatching.MatchingLabels {
					grouping[name] = true
				}
				for _, name := range n.VectorMatching.Include {
					grouping[name] = true
				}
			}
		}
		return nil
	})
	out.Grouping = sorted(grouping)
	return out
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql: stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	promql := parser.NewParser(parser.Options{})
	reports := make([]report, 0, len(exprs))
	for _, text := range exprs {
		reports = append(reports, inspect(promql, text))
	}
	if err := json.NewEncoder(os.Stdout).Encode(reports); err != nil {
		fmt.Fprintln(os.Stderr, "promql:", err)
		os.Exit(1)
	}
}
