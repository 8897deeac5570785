module example.com/botgate/go-echo

go 1.19
