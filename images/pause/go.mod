module stackops.dev/images/pause

go 1.24
