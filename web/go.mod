module dtrsandbox/web

go 1.26
