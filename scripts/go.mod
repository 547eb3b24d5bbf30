module dtrsandbox/scripts

go 1.26

require (
	dtrsandbox/shared v0.0.0
	github.com/chromedp/chromedp v0.23.0
	github.com/golang-jwt/jwt/v5 v5.3.1
	golang.org/x/net v0.51.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	golang.org/x/text v0.34.0 // indirect
	gorm.io/gorm v1.31.2 // indirect
)

replace dtrsandbox/shared => ../shared

replace dtrsandbox/web => ../web
