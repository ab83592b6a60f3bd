module github.com/truthboard/truthboard

go 1.26.8
