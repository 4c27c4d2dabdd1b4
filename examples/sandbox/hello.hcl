# The README's demo: the hello web service on every sandbox host. It is
# loaded together with the sandbox.hcl that `gsd sandbox up` writes, whose
# hosts carry the label sandbox = "true".

variable "version" {
  type    = string
  default = "1.0.0"
}

build "hello" {
  package = "./services/hello"
  dir     = ".." # examples/, relative to this file
  ldflags = "-s -w -X main.version=${var.version}"
}

service "hello" {
  hosts        = { sandbox = "true" }
  binary       = build.hello
  version      = var.version
  display_name = "Hello Web"
  description  = "The gsd demo service."
  args         = ["-listen", ":8080", "-config", "C:\\ProgramData\\gsd\\services\\hello\\files\\hello.yaml"]

  file "hello.yaml" {
    content   = "greeting: hello from gsd\n"
    on_change = "reload"
  }

  recovery {
    actions = ["restart/5s", "restart/30s", "none"]
  }
}
