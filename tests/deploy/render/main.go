// A minimal Helm-like renderer used by tests/deploy/test_deploy.py where Helm itself is not available:
// Go text/template + sprig (Helm's template engine and function library) plus Helm's include, required,
// fail and toYaml. Not Helm: values are decoded by yaml.v3 (ints stay ints), toYaml formatting may differ,
// no capabilities, lookup or subcharts. Usage: render CHART_DIR [VALUES.yaml ...] > manifests.yaml
// (NOTES.txt goes to stderr). Builds in GOPATH mode against Debian's golang-github-masterminds-sprig-dev
// and golang-gopkg-yaml.v3-dev.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

func load(path string) map[string]interface{} {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func coalesce(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok && len(sm) > 0 {
				coalesce(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func main() {
	chartDir := os.Args[1]
	values := load(filepath.Join(chartDir, "values.yaml"))
	for _, f := range os.Args[2:] {
		coalesce(values, load(f))
	}
	chart := load(filepath.Join(chartDir, "Chart.yaml"))
	t := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = func(v interface{}) string {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	t.Funcs(funcs).Option("missingkey=zero")
	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		name := "mambast-batch/templates/" + filepath.Base(f)
		if _, err := t.New(name).Parse(string(b)); err != nil {
			fmt.Fprintln(os.Stderr, "PARSE", err)
			os.Exit(2)
		}
	}
	data := map[string]interface{}{
		"Values":   values,
		"Chart":    map[string]interface{}{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
		"Release":  map[string]interface{}{"Name": "mambast", "Namespace": "batch", "Service": "Helm"},
		"Template": map[string]interface{}{"BasePath": "mambast-batch/templates"},
	}
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "_") {
			continue
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "mambast-batch/templates/"+base, data); err != nil {
			fmt.Fprintln(os.Stderr, "RENDER", err)
			os.Exit(3)
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			fmt.Fprintln(os.Stderr, out)
			continue
		}
		if strings.TrimSpace(out) != "" {
			fmt.Printf("---\n# Source: %s\n%s\n", base, out)
		}
	}
}
