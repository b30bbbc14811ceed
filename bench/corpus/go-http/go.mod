module dockergate.example/corpus/go-http

go 1.19
