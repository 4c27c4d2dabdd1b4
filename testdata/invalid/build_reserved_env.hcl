build "tool" {
  package = "./cmd/tool"
  env     = { GOOS = "windows", GOPRIVATE = "example.com" }
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 3:13 Reserved build variable
