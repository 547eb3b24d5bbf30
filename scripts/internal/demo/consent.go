package demo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// htmlForm is one <form> of a page with the values a browser would submit.
type htmlForm struct {
	Action  string
	Method  string
	Fields  url.Values
	Buttons []htmlButton // submit buttons with a name
}

type htmlButton struct{ Name, Value, Label string }

// parseForms reads every form of an HTML page: hidden and text inputs,
// checked checkboxes and radios, and named submit buttons.
func parseForms(body []byte) ([]htmlForm, error) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	var forms []htmlForm
	var cur *htmlForm
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms = append(forms, htmlForm{Action: attr(n, "action"), Method: strings.ToUpper(attr(n, "method")), Fields: url.Values{}})
				cur = &forms[len(forms)-1]
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case "input":
				if cur != nil {
					name, typ := attr(n, "name"), strings.ToLower(attr(n, "type"))
					switch {
					case name == "":
					case typ == "submit":
						cur.Buttons = append(cur.Buttons, htmlButton{Name: name, Value: attr(n, "value"), Label: attr(n, "value")})
					case typ == "checkbox" || typ == "radio":
						if hasAttr(n, "checked") {
							cur.Fields.Add(name, valueOr(n, "on"))
						}
					default:
						cur.Fields.Add(name, attr(n, "value"))
					}
				}
			case "button":
				if cur != nil && attr(n, "name") != "" && strings.ToLower(cmp.Or(attr(n, "type"), "submit")) == "submit" {
					cur.Buttons = append(cur.Buttons, htmlButton{Name: attr(n, "name"), Value: attr(n, "value"), Label: strings.TrimSpace(text(n))})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return forms, nil
}

// approveConsent submits the consent form of page p with its approving
// button, and follows the redirects.
func approveConsent(ctx context.Context, b *browser, p *page, stop func(*url.URL) bool) (*page, error) {
	if p.Status != http.StatusOK || !strings.Contains(p.Header.Get("Content-Type"), "html") {
		return nil, fmt.Errorf("authorize ended at %s with HTTP %d, not a redirect to the app nor a consent page: %s", p.URL, p.Status, oneLine(string(clipBytes(p.Body, 200))))
	}
	forms, err := parseForms(p.Body)
	if err != nil {
		return nil, err
	}
	for _, f := range forms {
		if f.Method != http.MethodPost {
			continue
		}
		btn, ok := approving(f.Buttons)
		if !ok {
			continue
		}
		vals := url.Values{}
		for k, v := range f.Fields {
			vals[k] = v
		}
		vals.Set(btn.Name, btn.Value)
		action, err := p.URL.Parse(f.Action)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", p.URL.Scheme+"://"+p.URL.Host)
		return b.navigate(req, stop)
	}
	return nil, fmt.Errorf("page %s has no form with an approve button", p.URL)
}

// approving finds the button that grants consent.
func approving(buttons []htmlButton) (htmlButton, bool) {
	for _, b := range buttons {
		v := strings.ToLower(b.Value + " " + b.Label)
		refusing := false
		for _, w := range []string{"deny", "don't", "do not", "cancel", "reject", "decline", "refuse"} {
			refusing = refusing || strings.Contains(v, w)
		}
		if refusing {
			continue
		}
		for _, w := range []string{"allow", "approve", "accept", "grant", "authorize", "yes"} {
			if strings.Contains(v, w) {
				return b, true
			}
		}
	}
	return htmlButton{}, false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func valueOr(n *html.Node, def string) string {
	if hasAttr(n, "value") {
		return attr(n, "value")
	}
	return def
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return sb.String()
}
